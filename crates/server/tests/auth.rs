//! The auth matrix: every credential form × admin / READ / WRITE / ALL / none ×
//! `/write`, `/api/v2/write`, `/query` DDL, with InfluxDB's statuses and texts.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use base64::Engine as _;
use common::{client, Server};
use reqwest::blocking::RequestBuilder;
use serde_json::{json, Value};

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
