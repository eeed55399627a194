//! Real nginx in front of the test upstream, asking the gateway's check endpoint with
//! `auth_request`: an allowed call reaches the upstream with Charter's identity headers; a
//! policy denial is 403 and a missing token 401, each with the reason nginx passes on.

use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::harness::World;

const NGINX: &str = "/usr/sbin/nginx";

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}

async fn start_nginx(gateway: &str, upstream: &str) -> Nginx {
    assert!(
        std::path::Path::new(NGINX).exists(),
        "nginx is required (apt-get install nginx; .ci/run installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_charter_check;
            auth_request_set $charter_reason $upstream_http_x_charter_reason;
            auth_request_set $charter_partner $upstream_http_x_charter_partner;
            auth_request_set $charter_grant $upstream_http_x_charter_grant;
            add_header X-Charter-Reason $charter_reason always;
            proxy_set_header Authorization "";
            proxy_set_header X-Charter-Partner $charter_partner;
            proxy_set_header X-Charter-Grant $charter_grant;
            proxy_pass http://{upstream};
        }}
        location = /_charter_check {{
            internal;
            proxy_pass http://{gateway}/v1/authz/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
    }}
}}
"#,
        upstream = host_port(upstream),
        gateway = host_port(gateway),
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(NGINX)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx {
        child,
        port,
        _dir: dir,
    };
    // Wait until nginx accepts connections.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!(
        "nginx did not start; see {}/error.log",
        nginx._dir.path().display()
    );
}

both_backends! {
    async fn nginx_auth_request_allows_and_denies(app: TestApp) {
        let w = World::new(&app).await;
        let mut api = crate::harness::orders_api("orders", "https://api.example.com/orders");
        api["upstream"] = json!(app.upstream);
        let (s, _) = app.call(reqwest::Method::PUT, &format!("/v1/apis/{}", w.api), Some(&w.owner.1), Some(api)).await;
        assert_eq!(s, StatusCode::OK);
        let grant = w.active_grant(&app).await;
        let client = w.client(&app, &grant).await;
        let token = app.token_for(&client).await;
        let nginx = start_nginx(&app.gw, &app.upstream).await;
        let url = |p: &str| format!("http://127.0.0.1:{}{p}", nginx.port);

        let resp = app.http.get(url("/orders/orders/42")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let got = app.received.lock().unwrap().last().cloned().unwrap();
        assert_eq!(got.path_and_query, "/orders/orders/42", "nginx forwards its own URI");
        assert_eq!(got.headers["x-charter-partner"], w.direct.as_str());
        assert_eq!(got.headers["x-charter-grant"], grant.as_str());
        assert!(got.headers.get("authorization").is_none());

        let resp = app.http.post(url("/orders/orders")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()["x-charter-reason"], "scope_not_granted");

        let resp = app.http.get(url("/orders/orders/42")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["x-charter-reason"], "token_missing");

        assert_eq!(app.received.lock().unwrap().len(), 1, "denied calls never reached the upstream");
    }
}
