//! Schedules (SPEC §11) with the real `agent-office` binary: two replicas fire a per-second
//! schedule while one of them is SIGKILLed twice — every due second pushed exactly once; a
//! restart pushes nothing twice; the endpoints refuse bad input naming the field.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::agent_sim::OPERATOR_TOKEN;
use common::{FakeTelegram, Redis, ServerProcess};
use redis::AsyncCommands;
use serde_json::{json, Value};

const OPS: [(&str, &str); 1] = [("OPERATOR_TOKEN", OPERATOR_TOKEN)];

async fn post(s: &ServerProcess, body: Value) -> (u16, Value) {
    s.server.operator_post("/api/schedules", body).await
}

/// The due seconds pushed so far, with how often each was pushed.
async fn pushed(c: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u32> {
    let items: Vec<String> = c.lrange("queue:ticks", 0, -1).await.unwrap();
    let mut seen = BTreeMap::new();
    for i in items {
        let v: Value = serde_json::from_str(&i).unwrap();
        assert_eq!(v["payload"], "tick", "{i}");
        *seen
            .entry(v["id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_push_every_due_second_once_through_kills_and_restarts() {
    let redis = Redis::start().await;
    let mut c = redis.conn().await;
    let tg = FakeTelegram::start().await;
    let a = ServerProcess::start_with(&redis.url(), &tg, &OPS).await;
    let b = ServerProcess::start_with(&redis.url(), &tg, &OPS).await;
    let (status, created) = post(
        &a,
        json!({"name": "ticks", "cron": "* * * * * *", "queue": "ticks", "job": "tick"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["next_runs"].as_array().unwrap().len(), 3);

    tokio::time::sleep(Duration::from_secs(4)).await;
    a.kill(); // SIGKILL: b goes on alone
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = ServerProcess::start_with(&redis.url(), &tg, &OPS).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = ServerProcess::start_with(&redis.url(), &tg, &OPS).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Both stop; what was pushed is final.
    let _: () = redis::cmd("HSET")
        .arg("agent-office:{sched}:schedules")
        .arg("ticks")
        .arg(
            json!({"name":"ticks","cron":"* * * * * *","timezone":"UTC","queue":"ticks","job":"tick","enabled":false,"created_at":"2026-01-01T00:00:00Z"})
                .to_string(),
        )
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = c
        .set("agent-office:{sched}:version", "test-disabled")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen = pushed(&mut c).await;
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "pushed more than once: {twice:?}");
    // every second from the first to the last pushed is there: none lost to the kills
    let secs: Vec<i64> = seen
        .keys()
        .map(|id| {
            let t = id.strip_prefix("sched:ticks:").unwrap();
            chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp()
        })
        .collect();
    assert!(secs.len() >= 12, "{seen:?}");
    let (first, last) = (secs[0], secs[secs.len() - 1]);
    assert_eq!(
        secs.len() as i64,
        last - first + 1,
        "a due second is missing: {seen:?}"
    );

    // the list says when it last ran and which job that was
    let list: Value = a.server.get("/api/schedules").await.json().await.unwrap();
    let s = &list["schedules"][0];
    assert_eq!(s["enabled"], false);
    assert_eq!(s["next_run_at"], Value::Null);
    let last_id = s["last_job_id"].as_str().unwrap();
    assert!(seen.contains_key(last_id), "{last_id}");
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_naming_the_field_and_the_list_previews_runs() {
    let redis = Redis::start().await;
    let tg = FakeTelegram::start().await;
    let s = ServerProcess::start_with(&redis.url(), &tg, &OPS).await;
    let base = json!({"name": "n1", "cron": "0 3 * * *", "queue": "image-render", "job": "x"});
    for (patch, field) in [
        (json!({"cron": "61 * * * *"}), "cron"),
        (json!({"cron": "* * * *"}), "cron"),
        (json!({"timezone": "Mars/Base"}), "timezone"),
        (json!({"queue": "a b"}), "queue"),
        (json!({"job": {"id": "mine"}}), "job.id"),
        (json!({"job": 7}), "job"),
        (json!({"job": {"deadline": "soon"}}), "job"),
        (json!({"name": "bad name"}), "name"),
        (json!({"extra": 1}), "body"),
    ] {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = post(&s, body).await;
        assert_eq!(status, 400, "{patch}: {err}");
        let f = err["field"].as_str().unwrap_or_default();
        assert!(
            f == field || (field == "body" && !f.is_empty()),
            "{patch}: {err}"
        );
    }
    let (status, v) = post(
        &s,
        json!({"name": "nightly", "cron": "30 2 * * *", "timezone": "Asia/Seoul", "queue": "image-render", "job": {"payload": "sweep"}}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert!(
        v["next_runs"][0].as_str().unwrap().ends_with("T17:30:00Z"),
        "{v}"
    );
    let (status, _) = post(
        &s,
        json!({"name": "nightly", "cron": "* * * * *", "queue": "q", "job": "x"}),
    )
    .await;
    assert_eq!(status, 409, "a name is taken once");
    let preview: Value = s
        .server
        .get("/api/schedules/preview?cron=0%200%201%201%20*&timezone=UTC")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(preview["next_runs"].as_array().unwrap().len(), 5);
    assert!(preview["next_runs"][0]
        .as_str()
        .unwrap()
        .ends_with("-01-01T00:00:00Z"));
    let r = s.server.get("/api/schedules/preview?cron=nope").await;
    assert_eq!(r.status(), 400);
    // unauthenticated changes are refused
    let r = s
        .server
        .http
        .delete(format!("{}/api/schedules/nightly", s.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .server
        .http
        .delete(format!("{}/api/schedules/nightly", s.server.base))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let list: Value = s.server.get("/api/schedules").await.json().await.unwrap();
    assert!(list["schedules"].as_array().unwrap().is_empty());
}
