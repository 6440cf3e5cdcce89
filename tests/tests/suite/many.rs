//! `Client::run_many`: many inputs, a bounded number of jobs in flight, each result with
//! its input's index, against the simulator.

use std::collections::BTreeSet;
use std::time::Duration;

use falq::{ApiKey, Client, Config, JobLimit, WaitMode, endpoints, types};
use falq_sim::{Sim, SimConfig, SimTiming};
use futures_util::StreamExt;
use serde_json::json;

async fn sim(workers: usize) -> Sim {
    let timing = SimTiming { queue_delay: Duration::from_millis(5), run_time: Duration::from_millis(40), workers, ..SimTiming::default() };
    Sim::spawn(SimConfig { timing, ..SimConfig::default() }).await.unwrap()
}

fn client(sim: &Sim) -> Client {
    let mut c = Config::new(sim.base_url()).unwrap().with_key(ApiKey::new("k"));
    c.wait.mode = WaitMode::Stream;
    Client::new(c).unwrap()
}

fn input(prompt: String) -> types::FluxProKontextTextToImageInput {
    serde_json::from_value(json!({ "prompt": prompt, "seed": 7 })).unwrap()
}

#[tokio::test]
async fn every_input_completes_once_with_its_index() {
    let sim = sim(4).await;
    let c = client(&sim);
    let inputs: Vec<_> = (0..40).map(|i| input(format!("prompt {i}"))).collect();
    let mut seen = BTreeSet::new();
    let mut results = c.run_many::<endpoints::FluxProKontextTextToImage>(inputs, JobLimit::adaptive(64));
    while let Some(done) = results.next().await {
        let out = done.result.unwrap_or_else(|e| panic!("input {}: {e}", done.index));
        assert_eq!(out.images.len(), 1);
        assert!(done.request_id.is_some());
        assert!(seen.insert(done.index), "input {} answered twice", done.index);
    }
    assert_eq!(seen, (0..40).collect::<BTreeSet<_>>());
    assert_eq!(sim.counters().jobs.submitted, 40, "one job per input");
}

#[tokio::test]
async fn a_bad_input_fails_alone_and_says_which() {
    let sim = sim(4).await;
    let c = client(&sim);
    let mut inputs: Vec<serde_json::Value> = (0..6).map(|i| json!({ "prompt": format!("p{i}") })).collect();
    inputs[3] = json!({ "prompt": "p3", "num_images": 99 });
    let results: Vec<_> =
        c.run_many_json("fal-ai/flux-pro/kontext/text-to-image", inputs, JobLimit::fixed(2), Default::default()).collect().await;
    assert_eq!(results.len(), 6);
    for done in &results {
        match (done.index, &done.result) {
            (3, Err(falq::Error::InvalidInput { source, .. })) => assert_eq!(source.0[0].field, "num_images"),
            (3, other) => panic!("input 3 should be refused before sending: {other:?}"),
            (i, r) => assert!(r.is_ok(), "input {i}: {r:?}"),
        }
    }
    assert_eq!(sim.counters().jobs.submitted, 5, "the bad input was never sent");
}
