//! Property tests: values generated from the catalogue's JSON Schemas (every endpoint's
//! `input_json_schema`, and the answers the client reads) round-trip through the generated
//! types unchanged, validate against the spec with a real JSON Schema validator, and pass
//! the client's own bounds. Reproducible: a fixed seed, no failure files.

use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;
use tests::conformance::strategy::value_strategy;
use tests::conformance::typed::{component_roundtrip, typed_endpoints};
use tests::conformance::{Spec, json_difference};

fn runner() -> TestRunner {
    let config = Config {
        cases: 256,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x00fa_1c0d),
        ..Config::default()
    };
    TestRunner::new(config)
}

#[test]
fn generated_inputs_of_every_endpoint_round_trip_and_validate() {
    let spec = Spec::current();
    let endpoints = typed_endpoints();
    assert_eq!(endpoints.len(), falq_api::ENDPOINTS.len());
    for endpoint in endpoints {
        let op = spec.operation(endpoint.operation_id).expect("operation");
        let schema = op.request_body.clone().expect("a body schema");
        let catalogued: Value = serde_json::from_str(endpoint.info.input_json_schema).expect("the catalogue's schema is JSON");
        let strategy = value_strategy(&catalogued);
        let result = runner().run(&strategy, |body: Value| {
            let fail = |what: String| TestCaseError::fail(format!("operation {}: {what}\nbody: {body}", op.id));
            spec.check(&schema, &body).map_err(|e| fail(format!("the strategy left the schema: {e:?}")))?;
            let sent = (endpoint.roundtrip)(&body).map_err(|e| fail(format!("the generated type refuses it: {e}")))?;
            if let Some(d) = json_difference(&body, &sent) {
                return Err(fail(format!("the round trip changes it: {d}")));
            }
            spec.check(&schema, &sent).map_err(|e| fail(format!("what it would send is not valid: {e:?}")))?;
            // Typed → JSON → typed is stable too.
            let again = (endpoint.roundtrip)(&sent).map_err(&fail)?;
            if again != sent {
                return Err(fail(format!("not stable: {sent} then {again}")));
            }
            match (endpoint.validate)(&body) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(bound)) => Err(fail(format!("the spec allows it, the client refuses it: {bound}"))),
                Err(e) => Err(fail(e)),
            }
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

#[test]
fn generated_answers_round_trip_and_validate() {
    let spec = Spec::current();
    // Each component the client reads as an answer: submit and status, result, errors,
    // and every endpoint's output.
    let mut answers = vec!["QueueStatus", "FalError", "CancelResponse", "FalResult"];
    for info in falq_api::ENDPOINTS {
        if !answers.contains(&info.output_schema) {
            answers.push(info.output_schema);
        }
    }
    for component in answers {
        let schema = serde_json::json!({"$ref": format!("#/components/schemas/{component}")});
        let roundtrip = component_roundtrip(component).expect("a generated type");
        let result = runner().run(&value_strategy(&spec.json_schema(&schema)), |value: Value| {
            let fail = |what: String| TestCaseError::fail(format!("{component}: {what}\nvalue: {value}"));
            spec.check(&schema, &value).map_err(|e| fail(format!("the strategy left the schema: {e:?}")))?;
            let back = roundtrip(&value).map_err(|e| fail(format!("the generated type refuses it: {e}")))?;
            if let Some(d) = json_difference(&value, &back) {
                return Err(fail(format!("the round trip changes it: {d}")));
            }
            spec.check(&schema, &back).map(drop).map_err(|e| fail(format!("the round trip is not valid: {e:?}")))
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

#[test]
fn the_strategies_reach_every_shape_the_spec_allows() {
    // A strategy that never produced a custom size, a null seed or a seed above 2^53 would
    // make the properties above vacuous for them.
    let info = falq_api::ENDPOINTS.iter().find(|e| e.operation_id == "flux_1_dev_redux").expect("flux_1_dev_redux");
    let strategy = value_strategy(&serde_json::from_str(info.input_json_schema).expect("JSON"));
    let mut runner = runner();
    let (mut custom, mut preset, mut null_seed, mut big_seed, mut without_optional) = (0, 0, 0, 0, 0);
    for _ in 0..400 {
        let body = proptest::strategy::ValueTree::current(&proptest::strategy::Strategy::new_tree(&strategy, &mut runner).expect("tree"));
        match body.get("image_size") {
            Some(Value::Object(_)) => custom += 1,
            Some(Value::String(_)) => preset += 1,
            _ => without_optional += 1,
        }
        match body.get("seed") {
            Some(Value::Null) => null_seed += 1,
            Some(v) if v.as_i64().is_some_and(|s| s.unsigned_abs() > 1 << 53) => big_seed += 1,
            _ => {}
        }
    }
    for (what, n) in [
        ("custom sizes", custom),
        ("presets", preset),
        ("null seeds", null_seed),
        ("seeds above 2^53", big_seed),
        ("absent sizes", without_optional),
    ] {
        assert!(n > 0, "400 generated bodies hold no {what}");
    }
}
