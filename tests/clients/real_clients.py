"""Real InfluxDB clients against a running Sundial.

Usage: real_clients.py v1 HOST PORT      (Python `influxdb` 1.x client)
       real_clients.py v2 URL USER PASS  (Python `influxdb-client` 2.x, token auth)
Exits non-zero with a message on the first failed check.
"""
import sys


def v1(host, port):
    from influxdb import InfluxDBClient

    c = InfluxDBClient(host=host, port=int(port), database="pyv1")
    c.create_database("pyv1")
    names = [d["name"] for d in c.get_list_database()]
    assert "pyv1" in names, names
    points = [
        {
            "measurement": "cpu",
            "tags": {"host": "server%02d" % i, "region": "us-west"},
            "time": 1_600_000_000_000_000_000 + i * 1_000_000_000,
            "fields": {"usage": i + 0.5, "count": i, "ok": True, "note": 'say "hi"'},
        }
        for i in range(10)
    ]
    assert c.write_points(points, time_precision="n"), "write_points failed"
    # Precision and batching paths of the client.
    assert c.write_points(
        [{"measurement": "mem", "fields": {"free": 1}, "time": 1_600_000_000}],
        time_precision="s",
    )
    assert c.write_points(points, batch_size=3)
    c.create_retention_policy("week", "7d", 1, database="pyv1")
    rps = [r["name"] for r in c.get_list_retention_policies("pyv1")]
    assert rps == ["autogen", "week"], rps

    # Reading back with the client's query(): raw points, tags, an aggregate
    # per tag, epoch times, several statements.
    rs = c.query('SELECT usage, "count", ok, note FROM cpu WHERE host = \'server03\'')
    pts = list(rs.get_points())
    assert pts == [
        {"time": "2020-09-13T12:26:43Z", "usage": 3.5, "count": 3, "ok": True, "note": 'say "hi"'}
    ], pts
    rs = c.query("SELECT max(usage) FROM cpu GROUP BY host", epoch="s")
    per_host = {tags["host"]: list(points) for (_, tags), points in rs.items()}
    assert len(per_host) == 10, per_host
    assert per_host["server09"] == [{"time": 1_600_000_009, "max": 9.5}], per_host
    rs = c.query("SELECT count(usage) FROM cpu; SELECT mean(free) FROM mem")
    assert list(rs[0].get_points()) == [{"time": "1970-01-01T00:00:00Z", "count": 10}], rs[0]
    assert list(rs[1].get_points()) == [{"time": "1970-01-01T00:00:00Z", "mean": 1}], rs[1]
    # chunked=True: the client reads the answer line by line as it comes.
    chunks = list(c.query("SELECT usage FROM cpu", chunked=True, chunk_size=3))
    got = [p["time"] for rs in chunks for p in rs.get_points()]
    assert len(chunks) == 4 and len(got) == 10 and got == sorted(got), (len(chunks), got)
    try:
        c.query("SELECT FROM cpu")
    except Exception as e:  # InfluxDBClientError on the 400
        assert "error parsing query" in str(e), e
    else:
        raise AssertionError("a parse error was not reported")
    print("v1 ok")


def v2(url, user, password):
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    with InfluxDBClient(url=url, token=f"{user}:{password}", org="-") as c:
        w = c.write_api(write_options=SYNCHRONOUS)
        w.write(
            bucket="pyv2/rp1",
            record=[
                Point("temp").tag("room", "a").field("celsius", 21.5).time(1_600_000_000, "s"),
                "temp,room=b celsius=19.25 1600000001000000000",
            ],
        )
        try:
            w.write(bucket="missing/autogen", record="temp v=1")
        except Exception as e:  # the client raises ApiException on 404
            assert "database not found" in str(e), e
        else:
            raise AssertionError("write to a missing database succeeded")
    print("v2 ok")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "v1":
        v1(sys.argv[2], sys.argv[3])
    elif mode == "v2":
        v2(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown mode " + mode)
