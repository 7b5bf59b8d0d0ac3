//! The auth matrix: every credential form × admin / READ / WRITE / ALL / none ×
//! `/write`, `/api/v2/write`, `/query` DDL, with InfluxDB's statuses and texts.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use base64::Engine as _;
use common::{client, Server};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECRET: &str = "test-secret";

#[derive(Clone, Copy, Debug)]
enum Form {
    QueryParams,
    Basic,
    Token,
    Bearer,
}

/// Adds the header form of the credentials (`QueryParams` go in the URL).
fn with_creds(rb: RequestBuilder, form: Form, user: &str, pw: &str) -> RequestBuilder {
    match form {
        Form::QueryParams => rb,
        Form::Basic => {
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
            rb.header("Authorization", format!("Basic {v}"))
        }
        Form::Token => rb.header("Authorization", format!("Token {user}:{pw}")),
        Form::Bearer => {
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                + 3600;
            let t = sundial_gateway::auth::sign_jwt(&json!({"username": user, "exp": exp}), SECRET);
            rb.header("Authorization", format!("Bearer {t}"))
        }
    }
}

/// Sends a request to `path?params` with credentials in `form`; returns (status, error text).
fn call(
    s: &Server,
    method: &str,
    path: &str,
    params: &str,
    body: &str,
    form: Form,
    user: &str,
) -> (u16, String) {
    let pw = format!("{user}-pw");
    let c = client();
    // Credentials in the URL must be part of the URL before the builder is made.
    let extra = match form {
        Form::QueryParams => format!("&u={user}&p={pw}"),
        _ => String::new(),
    };
    let url = s.url(&format!("{path}?{params}{extra}"));
    let rb = if method == "POST" {
        c.post(url)
    } else {
        c.get(url)
    };
    let rb = with_creds(rb, form, user, &pw);
    let r = rb.body(body.to_string()).send().expect("request");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    let err = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| {
            v["error"]
                .as_str()
                .map(String::from)
                .or_else(|| v["results"][0]["error"].as_str().map(String::from))
        })
        .unwrap_or_default();
    (status, err)
}

fn setup() -> Server {
    let s = Server::start_env(
        &["--auth-enabled", "true"],
        &[("SUNDIAL_HTTP_SHARED_SECRET", SECRET)],
    );
    // Before any admin exists, only creating one is allowed.
    let r = client()
        .post(s.url("/write?db=x"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().unwrap();
    assert_eq!(
        e["error"],
        "error authorizing query: create admin user first or disable authentication"
    );
    let r = client()
        .post(s.url("/query"))
        .form(&[("q", "CREATE DATABASE x")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(s.url("/query"))
        .form(&[(
            "q",
            "CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES",
        )])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let q = "CREATE DATABASE db; CREATE USER reader WITH PASSWORD 'reader-pw'; CREATE USER writer WITH PASSWORD 'writer-pw'; \
             CREATE USER allpriv WITH PASSWORD 'allpriv-pw'; CREATE USER nobody WITH PASSWORD 'nobody-pw'; \
             GRANT READ ON db TO reader; GRANT WRITE ON db TO writer; GRANT ALL ON db TO allpriv";
    let r = client()
        .post(s.url("/query?u=admin&p=admin-pw"))
        .form(&[("q", q)])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    for (i, res) in v["results"].as_array().unwrap().iter().enumerate() {
        assert!(res.get("error").is_none(), "statement {i}: {res}");
    }
    s
}

#[test]
fn credential_forms_times_privileges_times_endpoints() {
    let s = setup();
    let users = ["admin", "reader", "writer", "allpriv", "nobody"];
    for form in [Form::QueryParams, Form::Basic, Form::Token, Form::Bearer] {
        for user in users {
            let can_write = matches!(user, "admin" | "writer" | "allpriv");
            // /write
            let (st, e) = call(&s, "POST", "/write", "db=db", "m v=1", form, user);
            if can_write {
                assert_eq!(st, 204, "{form:?} {user} /write: {e}");
            } else {
                assert_eq!(st, 403, "{form:?} {user} /write");
                assert_eq!(
                    e,
                    format!("\"{user}\" user is not authorized to write to database \"db\"")
                );
            }
            // /api/v2/write
            let (st, e) = call(
                &s,
                "POST",
                "/api/v2/write",
                "bucket=db",
                "m v=2",
                form,
                user,
            );
            if can_write {
                assert_eq!(st, 204, "{form:?} {user} /api/v2/write: {e}");
            } else {
                assert_eq!(st, 403, "{form:?} {user} /api/v2/write");
            }
            // /query DDL needs admin.
            let q = format!("q=CREATE%20DATABASE%20made_by_{user}");
            let (st, e) = call(&s, "POST", "/query", &q, "", form, user);
            if user == "admin" {
                assert_eq!(st, 200, "{form:?} {user} /query: {e}");
            } else {
                assert_eq!(st, 403, "{form:?} {user} /query");
                assert!(e.contains("requires admin privilege"), "{e}");
            }
        }
    }
}

#[test]
fn authentication_failures() {
    let s = setup();
    let r = client()
        .post(s.url("/write?db=db"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().unwrap()["error"],
        "unable to parse authentication credentials"
    );
    let r = client()
        .post(s.url("/write?db=db&u=writer&p=wrong"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "authorization failed");
    let expired = sundial_gateway::auth::sign_jwt(&json!({"username": "writer", "exp": 1}), SECRET);
    let r = client()
        .post(s.url("/write?db=db"))
        .header("Authorization", format!("Bearer {expired}"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "token expired");
    let forged = sundial_gateway::auth::sign_jwt(
        &json!({"username": "admin", "exp": i64::MAX / 2}),
        "wrong-secret",
    );
    let r = client()
        .post(s.url("/write?db=db"))
        .header("Authorization", format!("Bearer {forged}"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // A stranger's query is refused before it is parsed.
    let r = client()
        .post(s.url("/query"))
        .form(&[("q", "CREATE DATABASE (((")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn bearer_disabled_without_a_secret() {
    let s = Server::start(&["--auth-enabled", "true"]);
    let r = client()
        .post(s.url("/query"))
        .form(&[(
            "q",
            "CREATE USER admin WITH PASSWORD 'pw' WITH ALL PRIVILEGES",
        )])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t =
        sundial_gateway::auth::sign_jwt(&json!({"username": "admin", "exp": i64::MAX / 2}), "x");
    let r = client()
        .post(s.url("/write?db=db"))
        .header("Authorization", format!("Bearer {t}"))
        .body("m v=1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().unwrap()["error"], "bearer auth disabled");
}

/// `/query` as `user:pw` (URL credentials); returns (status, error text).
fn query_as(s: &Server, user: &str, pw: &str, q: &str) -> (u16, String) {
    let r = client()
        .post(s.url("/query"))
        .query(&[("u", user), ("p", pw)])
        .form(&[("q", q)])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().unwrap_or(Value::Null);
    let err = v["error"]
        .as_str()
        .or_else(|| v["results"][0]["error"].as_str())
        .unwrap_or_default()
        .to_string();
    (status, err)
}

fn database_names(s: &Server) -> Vec<String> {
    let r = client()
        .post(s.url("/query?u=admin&p=admin-pw"))
        .form(&[("q", "SHOW DATABASES")])
        .send()
        .unwrap();
    let v: Value = r.json().unwrap();
    v["results"][0]["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_refused_statement_means_nothing_in_the_request_ran() {
    let s = setup();
    assert_eq!(
        query_as(&s, "admin", "admin-pw", "CREATE DATABASE db1").0,
        200
    );
    // The first statement is the reader's to run, the second is not.
    let (st, e) = query_as(
        &s,
        "reader",
        "reader-pw",
        "SET PASSWORD FOR reader = 'p2'; DROP DATABASE db1",
    );
    assert_eq!(st, 403, "{e}");
    assert_eq!(
        e,
        "error authorizing query: reader not authorized to execute statement, requires admin privilege"
    );
    // Nothing ran: the old password still works, the new one does not, db1 is there.
    assert_eq!(query_as(&s, "reader", "reader-pw", "SHOW DATABASES").0, 200);
    assert_eq!(query_as(&s, "reader", "p2", "SHOW DATABASES").0, 401);
    assert!(database_names(&s).contains(&"db1".to_string()));
    // Alone, the same statement runs.
    assert_eq!(
        query_as(&s, "reader", "reader-pw", "SET PASSWORD FOR reader = 'p2'").0,
        200
    );
    assert_eq!(query_as(&s, "reader", "p2", "SHOW DATABASES").0, 200);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn tokens_from_the_future_are_refused() {
    let s = setup();
    let now = unix_now();
    let write_with = |claims: Value, m: &str| {
        let t = sundial_gateway::auth::sign_jwt(&claims, SECRET);
        let r = client()
            .post(s.url("/write?db=db"))
            .header("Authorization", format!("Bearer {t}"))
            .body(format!("{m} v=1"))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let e = r.json::<Value>().map(|v| v["error"].clone()).ok();
        (status, e.and_then(|e| e.as_str().map(String::from)))
    };
    let exp = now + 3600;
    assert_eq!(
        write_with(
            json!({"username": "writer", "exp": exp, "nbf": now + 600}),
            "nbf"
        ),
        (401, Some("Token is not valid yet".into()))
    );
    assert_eq!(
        write_with(
            json!({"username": "writer", "exp": exp, "iat": now + 600}),
            "iat"
        ),
        (401, Some("Token used before issued".into()))
    );
    // The same claims in the past are fine.
    assert_eq!(
        write_with(
            json!({"username": "writer", "exp": exp, "iat": now - 60, "nbf": now - 60}),
            "ok"
        ),
        (204, None)
    );
}

fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn an_unknown_content_encoding_is_refused_before_the_body_is_read() {
    let mut s = setup();
    let post = |path: &str, encoding: Option<&str>, body: Vec<u8>| {
        let mut rb = client().post(s.url(path));
        if let Some(e) = encoding {
            rb = rb.header("Content-Encoding", e);
        }
        let r = rb.body(body).send().unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap_or_default())
    };
    for path in [
        "/write?db=db&u=admin&p=admin-pw",
        "/api/v2/write?bucket=db&u=admin&p=admin-pw",
    ] {
        let (st, text) = post(path, Some("br"), b"enc_br v=1".to_vec());
        assert_eq!(st, 415, "{path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["error"],
            "unsupported Content-Encoding \"br\": send the body as is or with gzip"
        );
        // A gzip body declared as something else is not parsed as text either.
        assert_eq!(post(path, Some("deflate"), gz(b"enc_deflate v=1")).0, 415);
        // Accepted: none, identity and gzip, in any case.
        assert_eq!(post(path, None, b"enc_none v=1".to_vec()).0, 204);
        assert_eq!(
            post(path, Some("Identity"), b"enc_identity v=1".to_vec()).0,
            204
        );
        assert_eq!(post(path, Some("GZIP"), gz(b"enc_gzip v=1")).0, 204);
    }
    // A POSTed query body: the same rule, and gzip is inflated.
    let form = b"q=CREATE%20DATABASE%20zipped".to_vec();
    let q = "/query?u=admin&p=admin-pw";
    assert_eq!(post(q, Some("br"), form.clone()).0, 415);
    let ok = |enc, body| {
        let mut rb = client()
            .post(s.url(q))
            .header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(e) = enc {
            rb = rb.header("Content-Encoding", e);
        }
        rb.body(body).send().unwrap().status().as_u16()
    };
    assert_eq!(ok(Some("gzip"), gz(&form)), 200);
    assert_eq!(ok(None, form.clone()), 200);
    assert!(database_names(&s).contains(&"zipped".to_string()));
    // Nothing of the refused bodies was written.
    assert!(s.terminate().success());
    let dump = common::export(s.data_dir(), "db");
    for m in ["enc_none", "enc_identity", "enc_gzip"] {
        assert!(
            dump.contains(&format!("{m} v=1")),
            "{m} missing from {dump}"
        );
    }
    for m in ["enc_br", "enc_deflate"] {
        assert!(!dump.contains(m), "{m} was written: {dump}");
    }
}

/// How long one `/query` with these credentials takes to be answered, and its status.
fn timed_login(c: &reqwest::blocking::Client, s: &Server, user: &str, pw: &str) -> (u16, Duration) {
    let started = Instant::now();
    let r = c
        .post(s.url("/query"))
        .query(&[("u", user), ("p", pw)])
        .form(&[("q", "SHOW DATABASES")])
        .send()
        .unwrap();
    (r.status().as_u16(), started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn a_failed_login_costs_the_same_whether_or_not_the_user_exists() {
    let s = setup();
    let c = client();
    // Warm both paths once (connection, dummy hash).
    timed_login(&c, &s, "ghost", "nope");
    timed_login(&c, &s, "reader", "reader-pw");
    let (mut unknown, mut known) = (Vec::new(), Vec::new());
    for i in 0..9 {
        // A fresh name each time, and a success after each wrong password, keep
        // the brake on repeated failures out of this measurement.
        let (st, t) = timed_login(&c, &s, &format!("ghost-{i}"), "nope");
        assert_eq!(st, 401);
        unknown.push(t);
        let (st, t) = timed_login(&c, &s, "reader", "wrong");
        assert_eq!(st, 401);
        known.push(t);
        // reader's password is remembered by now: this one skips argon2.
        assert_eq!(timed_login(&c, &s, "reader", "reader-pw").0, 200);
    }
    let (u, k) = (median(unknown.clone()), median(known.clone()));
    // Both pay for argon2 (a few ms at the least; an unchecked unknown user took
    // half a millisecond), and neither costs much more than the other.
    let floor = Duration::from_millis(5);
    assert!(
        u >= floor && k >= floor,
        "unknown {unknown:?} known {known:?}"
    );
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    assert!(
        (1.0 / 3.0..3.0).contains(&ratio),
        "unknown {u:?} vs known {k:?}: {unknown:?} {known:?}"
    );
}

#[test]
fn repeated_failures_for_one_name_are_slowed_down() {
    let s = setup();
    // An existing user and a name that does not exist, side by side: the brake
    // must not tell them apart.
    let runs: Vec<Vec<Duration>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["writer", "no-such-user"]
            .into_iter()
            .map(|user| {
                let s = &s;
                scope.spawn(move || {
                    let c = client();
                    (0..8)
                        .map(|_| {
                            let (st, t) = timed_login(&c, s, user, "wrong");
                            assert_eq!(st, 401);
                            t
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for times in &runs {
        // The 8th attempt waits 1.6 s before it is checked; the 1st does not wait.
        assert!(times[7] >= times[0] + Duration::from_secs(1), "{times:?}");
    }
    // Another user is not slowed down.
    let (st, other) = timed_login(&client(), &s, "nobody", "wrong");
    assert_eq!(st, 401);
    for times in &runs {
        assert!(other < times[7] / 2, "other {other:?}, {times:?}");
    }
}

/// SHOW MEASUREMENTS and its kin need READ on their database, as in 1.6.
#[test]
fn show_statements_need_read_on_their_database() {
    let s = setup();
    for q in [
        "SHOW MEASUREMENTS ON db",
        "SHOW TAG KEYS ON db",
        "SHOW TAG VALUES ON db WITH KEY = \"host\"",
        "SHOW FIELD KEYS ON db",
        "SHOW SERIES ON db",
    ] {
        assert_eq!(
            query_as(&s, "reader", "reader-pw", q),
            (200, String::new()),
            "{q}"
        );
        let (st, e) = query_as(&s, "nobody", "nobody-pw", q);
        assert_eq!(st, 403, "{q}: {e}");
        assert!(
            e.starts_with(
                "error authorizing query: nobody not authorized to execute statement 'SHOW"
            ) && e.ends_with("', requires READ on db"),
            "{q}: {e}"
        );
    }
    // FIELD KEYS reads the database its FROM names: READ is needed there too.
    let (st, e) = query_as(
        &s,
        "reader",
        "reader-pw",
        "SHOW FIELD KEYS ON db FROM \"other\"..\"cpu\"",
    );
    assert_eq!(st, 403, "{e}");
    assert!(e.ends_with("', requires READ on other"), "{e}");
}
