//! The real `larder` binary's command line: `larder check`, flags from the
//! environment, global flags after the subcommand, `host:port` addresses,
//! JSON logs, `larder stats`, and configuration errors that say what to
//! write.

mod common;

use std::process::{Command, Output};

use common::binary::{free_port, serve, Serving, ENV_FLAGS};

fn larder() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_larder"));
    // Nothing from the developer's environment leaks into a test.
    for var in ENV_FLAGS {
        command.env_remove(var);
    }
    command
}

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "larder-cli-test-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_prints_the_effective_routes_and_exits_0() {
    let path = config_file(
        "check-ok",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\n\n\
         [cache]\nmemory_bytes = \"64MiB\"\nstale_if_error = \"5m\"\n\n\
         [[route]]\npath = \"/static/**\"\nttl = \"1h\"\ntags = [\"static\"]\n\n\
         [[route]]\nprefix = \"/api/\"\nnamespace = \"api\"\nvary = [\"accept-language\"]\ncookies = \"strip\"\n\n\
         [[route]]\nprefix = \"/account\"\nbypass = true\n",
    );
    let out = larder()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("the configuration is valid"), "{text}");
    assert!(text.contains("store      memory, 64 MiB"), "{text}");
    let first = text.find("1. path \"/static/**\": ttl 1h").expect(&text);
    let second = text
        .find("2. prefix \"/api/\": origin headers")
        .expect(&text);
    let third = text.find("3. prefix \"/account\": bypass").expect(&text);
    assert!(
        first < second && second < third,
        "in the order tried: {text}"
    );
    assert!(
        text.contains("namespace \"api\"; vary accept-language; cookies strip"),
        "{text}"
    );
    assert!(text.contains("stale_if_error 5m"), "{text}");
    assert!(text.contains("default: origin headers"), "{text}");
}

#[test]
fn check_fails_with_exit_2_and_the_line() {
    let path = config_file(
        "check-bad",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\n[[route]]\nprefix = \"/a\"\nexpire = 60\n",
    );
    let out = larder()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 5") && err.contains("did you mean `ttl`?"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    // What the text names is checked too, as `serve` would at start.
    let path = config_file(
        "check-tls",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\n[tls]\ncertificate = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
    );
    let out = larder()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/cert.pem"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn flags_come_from_the_environment_and_flags_win_over_it() {
    let out = larder()
        .arg("check")
        .env("LARDER_UPSTREAM", "http://10.1.2.3:8000")
        .env("LARDER_LISTEN", "localhost:8081")
        .env("LARDER_REDIS", "redis://10.0.0.5:6379")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("upstream   http://10.1.2.3:8000/"), "{text}");
    assert!(text.contains("listen     127.0.0.1:8081"), "{text}");
    assert!(
        text.contains("store      redis redis://10.0.0.5:6379"),
        "{text}"
    );
    let path = config_file(
        "env-config",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\n[[route]]\nprefix = \"/env\"\nttl = 60\n",
    );
    let out = larder()
        .arg("check")
        .env("LARDER_CONFIG", &path)
        .env("LARDER_UPSTREAM", "http://10.1.2.3:8000")
        .args(["--upstream", "http://10.9.9.9:8000"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("1. prefix \"/env\": ttl 1m"), "{text}");
    assert!(text.contains("upstream   http://10.9.9.9:8000/"), "{text}");
    let out = larder()
        .arg("check")
        .env("LARDER_UPSTREAM", "http://127.0.0.1:8000")
        .env("LARDER_LISTEN", "8080")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("write \"127.0.0.1:8080\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_errors_say_what_to_write_and_exit_2() {
    for (name, text, says) in [
        (
            "redis",
            "[server]\nupstream = \"http://127.0.0.1:8000\"\nredis = \"10.0.0.5:6379\"\n",
            "write \"redis://10.0.0.5:6379\"",
        ),
        (
            "redis-scheme",
            "[server]\nupstream = \"http://127.0.0.1:8000\"\nredis = \"http://10.0.0.5\"\n",
            "write redis://host:6379",
        ),
        (
            "listen",
            "[server]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \"8080\"\n",
            "write \"127.0.0.1:8080\"",
        ),
        (
            "size",
            "[server]\nupstream = \"http://127.0.0.1:8000\"\n[cache]\nmemory_bytes = \"256M\"\n",
            "write a size such as \"256MiB\"",
        ),
    ] {
        let path = config_file(name, text);
        let out = larder()
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        let place = format!("{}, line", path.display());
        assert!(err.contains(&place) && err.contains(says), "{name}: {err}");
    }
    let path = config_file(
        "rediss",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\nredis = \"rediss://10.0.0.5:6380\"\n",
    );
    let out = larder()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    if cfg!(feature = "redis-tls") {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("`redis-tls` feature"),
            "{}",
            stderr(&out)
        );
    }
    let out = larder()
        .args([
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            "8080",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("write \"127.0.0.1:8080\""),
        "{}",
        stderr(&out)
    );
    let out = larder()
        .args([
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--redis",
            "localhost",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--redis: "), "{}", stderr(&out));
}

#[tokio::test]
async fn listen_takes_a_host_name() {
    let up = common::Upstream::start().await;
    let port = free_port();
    let serving = Serving::spawn(serve().args([
        "--upstream",
        &up.url(),
        "--listen",
        &format!("localhost:{port}"),
    ]));
    serving.wait_for("larder proxy listening", 1).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(common::get(addr, "/items").await.status, 200);
    serving.stop().await;
}

#[tokio::test]
async fn json_logs_are_one_object_a_line() {
    let up = common::Upstream::start().await;
    let port = free_port();
    for from_env in [false, true] {
        let mut command = serve();
        command.args([
            "--upstream",
            &up.url(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        if from_env {
            command.env("LARDER_LOG_FORMAT", "json");
        } else {
            command.args(["--log-format", "json"]);
        }
        let serving = Serving::spawn(&mut command);
        let log = serving.wait_for("larder proxy listening", 1).await;
        let line = log
            .lines()
            .find(|l| l.contains("larder proxy listening"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        assert_eq!(v["level"], "INFO", "{line}");
        assert_eq!(v["fields"]["message"], "larder proxy listening", "{line}");
        assert_eq!(v["fields"]["addr"], format!("127.0.0.1:{port}"), "{line}");
        serving.stop().await;
    }
    let out = larder()
        .args([
            "check",
            "--upstream",
            "http://127.0.0.1:9",
            "--log-format",
            "xml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("json"), "{}", stderr(&out));
}

async fn proxy_with_admin(up: &common::Upstream, token: &str) -> larder_proxy::Running {
    common::proxy(
        &up.url(),
        "",
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{token}\"\n"),
    )
    .await
}

#[tokio::test]
async fn admin_flags_work_after_the_subcommand_and_take_host_port() {
    let up = common::Upstream::start().await;
    let token = "global-flags-token-0123456789";
    let p = proxy_with_admin(&up, token).await;
    let admin = p.admin_addr().unwrap().to_string();
    let purge = |args: Vec<String>, env_admin: Option<String>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"));
        command.args(args).env("LARDER_ADMIN_TOKEN", token);
        command.env_remove("LARDER_ADMIN");
        if let Some(a) = env_admin {
            command.env("LARDER_ADMIN", a);
        }
        command.output()
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (args, env_admin) in [
        // After the subcommand's own arguments, host:port.
        (s(&["purge", "tag", "product-1", "--admin", &admin]), None),
        // Before them, as a URL.
        (
            s(&[
                "purge",
                "--admin",
                &format!("http://{admin}/"),
                "tag",
                "product-1",
            ]),
            None,
        ),
        // From the environment.
        (s(&["purge", "namespace", "default"]), Some(admin.clone())),
    ] {
        common::get(p.addr(), "/tagged").await;
        let out = purge(args.clone(), env_admin).await.unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("\"purged\""),
            "{args:?}: {}",
            stdout(&out)
        );
        assert!(!common::get(p.addr(), "/tagged")
            .await
            .cache_status()
            .contains("hit"));
    }
    let out = purge(s(&["purge", "tag", "x", "--admin", "ftp://h"]), None)
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("plain HTTP"), "{}", stderr(&out));
    // A refusal says why, from the JSON error.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["purge", "tag", "x", "--admin", &admin])
        .env("LARDER_ADMIN_TOKEN", "not-the-token")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("401 Unauthorized: missing or wrong bearer token"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn larder_stats_prints_a_table() {
    let up = common::Upstream::start().await;
    let token = "stats-table-token-0123456789";
    let p = proxy_with_admin(&up, token).await;
    common::get(p.addr(), "/tagged").await;
    common::get(p.addr(), "/tagged").await;
    common::get(p.addr(), "/set-cookie").await;
    let admin = p.admin_addr().unwrap().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["stats", "--admin", &admin])
        .env("LARDER_ADMIN_TOKEN", token)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .map(|l| l.split_whitespace().last().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {name} row in:\n{text}"))
    };
    assert_eq!(row("hits"), "1");
    assert_eq!(row("misses"), "2");
    assert_eq!(row("hit_ratio"), "33.3%");
    assert!(text.contains("\nnot stored:\n"), "{text}");
    assert_eq!(row("set-cookie"), "1");
    // The columns line up.
    let ends: Vec<usize> = text
        .lines()
        .filter(|l| !l.ends_with(':'))
        .map(str::len)
        .collect();
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text}");
}
