//! What the hunt run tests share: a migrated database, a runner on a manual
//! clock (10 s settle) and one hunt created at `created`; webhooks may go to
//! 127.0.0.1, where the tests' receivers listen.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use vigil_hunts::{hunt, HuntSpec, ManualClock, Runner, Settings};
use vigil_store::testing::{migrated, TempDatabase};
use vigil_store::{Pool, TimescaleChoice};

pub async fn setup(
    spec: serde_json::Value,
    created: DateTime<Utc>,
) -> (TempDatabase, Pool, Runner, Arc<ManualClock>, Uuid) {
    let (db, pool) = migrated(TimescaleChoice::Auto).await;
    let clock = Arc::new(ManualClock::new(created));
    let delivery = vigil_hunts::DeliveryConfig {
        webhook_allow: vigil_hunts::AllowList::parse("127.0.0.1").unwrap(),
        ..Default::default()
    };
    let settings = Settings { settle: TimeDelta::seconds(10), delivery: delivery.clone(), ..Default::default() };
    let runner = Runner::new(pool.clone(), settings, clock.clone());
    let spec: HuntSpec = serde_json::from_value(spec).unwrap();
    let v = spec.validate(10_000, &delivery).unwrap();
    let h = hunt::create(&pool, &v, Some("test"), created, TimeDelta::seconds(10)).await.unwrap();
    (db, pool, runner, clock, h.id)
}
