//! Round trips of parsed lines, and the varints.

use super::*;
use crate::wire::encode::unzigzag;
use crate::wire::read::Reader;

#[test]
fn round_trip_of_parsed_lines() {
    let body = concat!(
        "cpu,host=a,region=us-west usage=1.5,count=3i,big=18446744073709551615u,ok=true,msg=\"hi\" 1\n",
        // Tags out of order in the body: the canonical key sorts them.
        "cpu,zone=z,host=b,az=1 usage=-0.25 -5\n",
        // Escapes in measurement, tag keys and values, field keys.
        "we\\ ather\\,x,k\\ 1=v\\,1,k\\=2=v\\=2 f\\ 1=1,f\\,2=2i,f\\=3=F 1700000000000000000\n",
        "a=b,t=1 v=1 2\n",
        "a\\=b,t=\\x v=1 3\n",
        "m,t=x\\\\,u v=1 4\n",
        "m\\\\,t=1 v=1 5\n",
        // Strings with quotes, backslashes, newlines and unicode.
        "s,host=h str=\"say \\\"hi\\\" \\\\ back\\\\slash \\n and\nnewline\",e=\"\" 6\n",
        "日本,地域=東京,ключ=значение température=21.5,名前=\"값 🎉\" 7\n",
        "m,b=2,a=1,c=3 i=-9223372036854775808i,u=0u,x=1e300,y=5e-324,z=-0 8\n",
        "m v=1 -9223372036854775806\n",
        "m v=1 9223372036854775806\n",
        "m,t=\\ lead\\ and\\ trail\\  v=1 9\n",
        "m\tx\r,t=a\tb v=1 10\n",
        "many a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12 11\n",
        // Field names with backslashes, a tab after the first field.
        "m a=1,\tb=2,f\\\\=3,g\\x=4,h\\\\\\,i=5 12\n",
        "a#b,t=# v=1 13\n",
    );
    assert_eq!(round_trip_body(body), 17);
    let parsed = parse_lines(body.as_bytes(), &opts());
    assert!(parsed.errors().is_empty(), "{:?}", parsed.errors());
}

#[test]
fn parts_without_escapes_borrow_from_the_payload() {
    let body = "we\\ ather,a\\=b=c,d=e\\,f,g=h v=1 1\nplain,x=y v=1 2\n";
    let parsed = parse_lines(body.as_bytes(), &opts());
    let buf = encode_all(&parsed.iter().collect::<Vec<_>>());
    let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
    let range = buf.as_ptr_range();
    let in_buf = |s: &str| range.contains(&s.as_ptr());
    let p = d.get(0).unwrap();
    assert_eq!(p.measurement, "we ather");
    assert!(!in_buf(p.measurement));
    assert!(in_buf(p.series_key));
    let owned = |c: &Cow<'_, str>| matches!(c, Cow::Owned(_));
    let kinds: Vec<(bool, bool)> = p
        .tags
        .iter()
        .map(|t| (owned(&t.key), owned(&t.value)))
        .collect();
    assert_eq!(kinds, [(true, false), (false, true), (false, false)]);
    let p = d.get(1).unwrap();
    assert!(in_buf(p.measurement));
    assert!(p.tags.iter().all(|t| in_buf(&t.key) && in_buf(&t.value)));
    assert!(p.fields.iter().all(|f| in_buf(&f.key)));
    assert!(d.get(2).is_none());
}

#[test]
fn empty_payload_round_trips() {
    let buf = encode_all(&[]);
    assert_eq!(buf, [VERSION, 0]);
    let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
    assert!(d.is_empty());
    assert!(d.points().is_empty());
}

#[test]
fn encodes_from_batch_indices() {
    let body = cpu_body();
    let parsed = parse_lines(body.as_bytes(), &opts());
    let indices: Vec<u32> = vec![3, 1, 4, 1, 5];
    let mut buf = Vec::new();
    encode_points(indices.iter().map(|&i| parsed.get(i as usize)), &mut buf);
    let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
    assert_eq!(d.len(), 5);
    for (p, &i) in d.iter().zip(&indices) {
        assert_same(&p, &parsed.get(i as usize));
    }
}

#[test]
fn points_of_a_series_share_its_tags() {
    let mut body = String::new();
    for i in 0..10 {
        let host = i % 2;
        body.push_str(&format!(
            "cpu,datacenter=us-east-1a,hostname=host_{host},rack=4 v={i} {i}\n"
        ));
    }
    // A short key is split every time.
    body.push_str("m,t=1 v=1 1\nm,t=1 v=2 2\n");
    assert_eq!(round_trip_body(&body), 12);
    let parsed = parse_lines(body.as_bytes(), &opts());
    let buf = encode_all(&parsed.iter().collect::<Vec<_>>());
    let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
    assert_eq!(d.series.len(), 4);
    assert_eq!(d.tags.len(), 3 + 3 + 1 + 1);

    // All keys new: the lookups stop after 1,024 misses, points stay right.
    let mut body = String::new();
    for i in 0..1500 {
        body.push_str(&format!(
            "cpu,hostname=a_rather_long_host_name_{i} v=1 {i}\n"
        ));
    }
    body.push_str("cpu,hostname=a_rather_long_host_name_0 v=2 1\n");
    assert_eq!(round_trip_body(&body), 1501);
}

fn cpu_body() -> String {
    let mut s = String::new();
    for i in 0..8 {
        s.push_str(&format!(
            "cpu,hostname=host_{i},region=r{i} usage_user={i}.5,usage_idle=3 {i}\n"
        ));
    }
    s
}

#[test]
fn varints_and_zigzag() {
    for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
        let mut b = Vec::new();
        put_uvarint(&mut b, v);
        let mut r = Reader { buf: &b, pos: 0 };
        assert_eq!(r.uvarint("x"), Ok(v));
        assert_eq!(r.pos, b.len());
    }
    for v in [0i64, -1, 1, i64::MIN, i64::MAX, -123_456_789] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
    assert_eq!(zigzag(-1), 1);
    assert_eq!(zigzag(1), 2);
    // 11 bytes, and a 10th byte above 1, overflow.
    let long = [0xffu8; 10];
    let mut r = Reader { buf: &long, pos: 0 };
    assert!(matches!(
        r.uvarint("x"),
        Err(ReadError::VarintOverflow { offset: 0, .. })
    ));
    let mut two = [0xffu8; 10];
    two[9] = 0x02;
    let mut r = Reader { buf: &two, pos: 0 };
    assert!(matches!(
        r.uvarint("x"),
        Err(ReadError::VarintOverflow { .. })
    ));
    let mut r = Reader {
        buf: &[0x80, 0x80],
        pos: 0,
    };
    assert!(matches!(
        r.uvarint("x"),
        Err(ReadError::Truncated { offset: 0, .. })
    ));
}
