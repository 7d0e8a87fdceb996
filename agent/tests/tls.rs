//! TLS to Redis (SPEC §12): Debian's `redis-server` with `--tls-port` and a certificate made
//! here by `openssl` for a private CA; the server (its collector included) and
//! `pipeline-agent` reach it with `rediss://` / `redis.tls` and `REDIS_CA_FILE`, and refuse a
//! certificate that does not verify, saying it is the certificate. The same on a Redis Cluster
//! whose nodes speak TLS only (`scripts/redis-cluster.sh` with `CLUSTER_TLS_DIR`).

#[path = "../../server/tests/common/mod.rs"]
mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::ClusterSet;
use common::{free_port, heartbeat, Server};
use support::AgentProcess;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.crt`) in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A private CA, a certificate it signed for 127.0.0.1, and another CA that signed nothing.
fn certificates() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ao-tls-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    ca(&dir, "ca");
    ca(&dir, "other-ca");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "redis.key",
            "-out",
            "redis.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "redis.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "redis.crt",
        ],
    );
    dir
}

/// `redis-server` speaking TLS only, killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .current_dir(dir)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "redis.crt",
                "--tls-key-file",
                "redis.key",
                "--tls-ca-cert-file",
                "ca.crt",
            ])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server --tls-port did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    async fn conn(&self, dir: &Path) -> redis::aio::MultiplexedConnection {
        let pem = std::fs::read(dir.join("ca.crt")).unwrap();
        let client = redis::Client::build_with_tls(
            self.url(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            },
        )
        .unwrap();
        client.get_multiplexed_async_connection().await.unwrap()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh heartbeat of `image-render` (Contract 1), through `c`.
async fn beat_image_render(c: &mut impl redis::aio::ConnectionLike) {
    let beat = heartbeat("image-render", "render", "idle", 1);
    let _: () = redis::cmd("SET")
        .arg("worker:image-render:heartbeat")
        .arg(&beat)
        .arg("EX")
        .arg(45)
        .query_async(c)
        .await
        .unwrap();
}

/// Whether `s` shows `image-render` alive, read from Redis.
fn image_render_alive(s: &shared::NodesSnapshot) -> bool {
    s.redis_ok
        && s.workers
            .iter()
            .any(|w| w.name == "image-render" && w.alive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_the_agent_speak_tls_to_redis_and_refuse_a_certificate_that_does_not_verify()
{
    let dir = certificates();
    let redis = TlsRedis::start(&dir);
    let mut c = redis.conn(&dir).await;

    // the server: its collector reads a heartbeat over TLS
    beat_image_render(&mut c).await;
    let mut config = Server::fast_config(&redis.url());
    config.redis_ca = Some(std::fs::read(dir.join("ca.crt")).unwrap());
    let server = Server::start(config).await;
    server
        .wait_for("image-render alive over TLS", image_render_alive)
        .await;

    // a CA that did not sign the server's certificate: refused at start, naming the certificate
    let mut wrong = Server::fast_config(&redis.url());
    wrong.redis_ca = Some(std::fs::read(dir.join("other-ca.crt")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = leptos::config::LeptosOptions::builder()
        .output_name("agent-office")
        .build();
    let refused = server::run(wrong, options, listener, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("certificate did not verify") && refused.contains("REDIS_CA_FILE"),
        "{refused}"
    );
    // a CA given for a plain redis:// URL is a mistake, said at start
    let e = server::config::redis_client("redis://127.0.0.1:6379", Some(b"x")).unwrap_err();
    assert!(e.to_string().contains("not rediss://"), "{e}");

    // the agent: a pipeline over TLS, configured the way the README says (environment)
    let env = |ca: &str| {
        vec![
            ("REDIS_HOST", "127.0.0.1".to_string()),
            ("REDIS_PORT", redis.port.to_string()),
            ("REDIS_TLS", "true".into()),
            ("REDIS_CA_FILE", dir.join(ca).display().to_string()),
            ("AGENT_ID", "tls-agent".into()),
        ]
    };
    let agent = AgentProcess::start(
        "pipelines:\n  - { id: image, queue: image-render, handler: [\"true\"] }\n",
        &env("ca.crt"),
    );
    let _: () = redis::cmd("LPUSH")
        .arg("queue:image-render")
        .arg("j1")
        .arg("j2")
        .query_async(&mut c)
        .await
        .unwrap();
    agent
        .wait("/pipelines/image", Duration::from_secs(20), |v| {
            v["processed_count"] == 2
        })
        .await;
    let mut refused = AgentProcess::start(
        "pipelines:\n  - { id: image, queue: image-render, handler: [\"true\"] }\n",
        &env("other-ca.crt"),
    );
    let code = refused.wait_exit(Duration::from_secs(15));
    assert_ne!(code, Some(0));
    let log = refused.log();
    assert!(
        log.contains("certificate did not verify") && log.contains("REDIS_CA_FILE"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Redis Cluster that speaks TLS only (`scripts/redis-cluster.sh` with `CLUSTER_TLS_DIR`): the
/// server reads its fleet and answers for its jobs, the agent runs a tagged queue on it, both
/// verifying the nodes against `REDIS_CA_FILE`; with another CA the agent refuses to start,
/// saying it is the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_speaks_tls_to_the_server_and_the_agent() {
    let dir = certificates();
    let set = ClusterSet::start_tls(&dir);
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let urls: Vec<String> = set
        .ports
        .iter()
        .map(|p| format!("rediss://127.0.0.1:{p}"))
        .collect();
    let mut c = redis::cluster::ClusterClientBuilder::new(urls)
        .certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.clone()),
        })
        .build()
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    beat_image_render(&mut c).await;

    let mut config = Server::fast_config(&format!("rediss://127.0.0.1:{}", set.ports[0]));
    config.redis_ca = Some(ca.clone());
    config.cluster = Some(set.addrs());
    let server = Server::start(config).await;
    server
        .wait_for("image-render alive on the TLS Cluster", image_render_alive)
        .await;

    let nodes = set
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let done = dir.join("done.log");
    let yaml = format!(
        "pipelines:\n  - {{ id: t, queue: \"{{tls}}\", handler: [\"bash\", \"-c\", \"read j; echo $j >> {}\"] }}\n",
        done.display()
    );
    let env = |ca_file: &str| {
        vec![
            ("REDIS_CLUSTER_NODES", nodes.clone()),
            ("REDIS_TLS", "true".to_string()),
            ("REDIS_CA_FILE", dir.join(ca_file).display().to_string()),
            ("AGENT_ID", "tls-cl".to_string()),
        ]
    };
    let agent = AgentProcess::start(&yaml, &env("ca.crt"));
    let _: () = redis::cmd("LPUSH")
        .arg("queue:{tls}")
        .arg(r#"{"id":"t1","payload":"t1"}"#)
        .query_async(&mut c)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&done)
        .unwrap_or_default()
        .contains("t1")
    {
        assert!(
            Instant::now() < deadline,
            "the job never ran on the TLS Cluster\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its history reached the server's job index over TLS too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value = server.get("/api/jobs/t1").await.json().await.unwrap();
        if v["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(agent);

    let mut wrong = AgentProcess::start(&yaml, &env("other-ca.crt"));
    let code = wrong.wait_exit(Duration::from_secs(15));
    let log = wrong.log();
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("certificate") && log.contains("redis.ca_file"),
        "{log}"
    );
}
