//! Every example and default the spec holds (`openapi.json`'s `x-falq-examples`, defaults
//! and media-type examples, and the YAML blocks of the vendored pages) and every seed
//! fixture: valid against its schema, and unchanged by a round trip through the generated
//! type. Examples that contradict their own schema are listed, with the reason asserted.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::conformance::examples::{Example, ExampleTarget, check_example, openapi_examples, page_examples};
use tests::conformance::typed::component_roundtrip;
use tests::conformance::{Spec, json_difference};
use tests::fixture_json;

/// An example the relay's pages give that contradicts the schema it illustrates.
struct KnownContradiction {
    /// The example's label (operation and response, or schema).
    label: &'static str,
    /// The page under `specs/` that shows it: without that page (another relay's page
    /// of the endpoint in its place) the contradiction is not expected.
    page: &'static str,
    /// Every text the failure must carry: the field and the reasons, schema's and type's.
    reasons: &'static [&'static str],
    /// Why it is wrong and why the spec is kept as it is.
    why: &'static str,
}

const KNOWN_CONTRADICTIONS: &[KnownContradiction] = &[KnownContradiction {
    label: "operation flux_1_schnell_redux, response 200",
    page: "apifox/flux-1-schnell-redux.md",
    reasons: &["schema: /logs: {} is not of types", "type QueueStatus: logs: invalid type: map, expected a sequence"],
    why: "the schnell/redux page's submit example answers `logs: {}`, an object, where the shared QueueStatus \
          (specs/falq/queue.yaml, fal's protocol) has a list of log lines or null; relays answer `logs: null`",
}];

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("specs")
}

/// The known contradictions whose pages are in `specs/`.
fn expected_contradictions() -> impl Iterator<Item = &'static KnownContradiction> {
    KNOWN_CONTRADICTIONS.iter().filter(|k| specs_dir().join(k.page).is_file())
}

/// Checks each example; a failure must be a known contradiction with its reasons. Answers
/// the labels of the known contradictions that were met.
fn check_all(examples: &[Example]) -> Vec<&'static str> {
    let spec = Spec::current();
    let mut met = vec![];
    let mut failures = vec![];
    for example in examples {
        match check_example(spec, example) {
            Ok(()) => {}
            Err(e) => match KNOWN_CONTRADICTIONS.iter().find(|k| example.label() == k.label) {
                Some(known) => {
                    for reason in known.reasons {
                        assert!(
                            e.contains(reason),
                            "known contradiction {} ({}) should fail with {reason:?}, got: {e}",
                            known.label,
                            known.why
                        );
                    }
                    met.push(known.label);
                }
                None => failures.push(e),
            },
        }
    }
    assert!(failures.is_empty(), "{} examples do not conform:\n{}", failures.len(), failures.join("\n"));
    met
}

#[test]
fn every_example_and_default_in_openapi_json_conforms_or_is_a_known_contradiction() {
    let examples = openapi_examples(Spec::current());
    let count = |f: &dyn Fn(&Example) -> bool| examples.iter().filter(|e| f(e)).count();
    assert!(count(&|e| matches!(e.target, ExampleTarget::Response { .. })) > 0, "the submits' examples are checked");
    assert!(count(&|e| e.source.ends_with("/default")) > 0, "defaults are checked too");
    let met = check_all(&examples);
    for known in expected_contradictions() {
        assert!(met.contains(&known.label), "known contradiction {} no longer fails in openapi.json: remove it from the list", known.label);
    }
}

#[test]
fn every_example_the_pages_map_to_a_schema_conforms_or_is_a_known_contradiction() {
    let spec = Spec::current();
    let examples = page_examples(spec, &specs_dir()).expect("the pages parse");
    assert!(!examples.is_empty());
    // Examples where the normalized spec keeps the page's operation; the rest (pages set
    // aside, the queue's own calls, results moved to an output) are followed below.
    let mapped: Vec<Example> = examples.into_iter().filter(|e| e.target != ExampleTarget::Unmapped).collect();
    let met = check_all(&mapped);
    for known in expected_contradictions() {
        assert!(met.contains(&known.label), "known contradiction {} no longer fails in the pages: remove it from the list", known.label);
    }
}

#[test]
fn every_example_of_the_pages_is_in_openapi_json_or_its_page_was_set_aside_with_a_note() {
    // Nothing a page shows is silently dropped: each example is kept in the normalized
    // spec (where the other tests check it), or regen said why it is not used.
    let spec = Spec::current();
    let kept: Vec<Value> = openapi_examples(spec).into_iter().map(|e| e.value).collect();
    let specs = specs_dir();
    let regen = xtask::regen(&specs, specs.parent().expect("the checkout")).expect("regen");
    let set_aside = |source: &str| {
        let page = source.split('#').next().unwrap_or_default();
        regen.warnings.iter().any(|w| {
            w.file.display().to_string() == page && (w.message.contains("is set aside") || w.message.contains("which falq makes itself"))
        })
    };
    let mut checked = 0;
    for example in page_examples(spec, &specs_dir()).expect("the pages parse") {
        if matches!(example.target, ExampleTarget::HeaderParameter { .. }) || example.source.contains("/parameters/") {
            continue; // Auth and content type belong to the client, not to each call.
        }
        let found = kept.contains(&example.value);
        assert!(
            found || set_aside(&example.source),
            "{} ({}) is not in openapi.json, and regen said nothing of its page",
            example.label(),
            example.source
        );
        checked += 1;
    }
    assert!(checked > 0);
}

/// What each seed fixture is, and which generated type it must round-trip through.
const SEEDS: &[(&str, Seed)] = &[
    ("request-flux-1-dev-redux.json", Seed::Component("Flux1DevReduxInput")),
    ("request-flux-1-schnell-redux.json", Seed::Component("Flux1SchnellReduxInput")),
    ("request-flux-1-dev.json", Seed::Component("Flux1DevInput")),
    ("submit.json", Seed::Component("QueueStatus")),
    ("submit-relay.json", Seed::Component("QueueStatus")),
    ("result-image.json", Seed::Component("FluxImageOutput")),
    ("result-video.json", Seed::Component("FalResult")),
];

enum Seed {
    /// Conforms to this component and round-trips through its type.
    Component(&'static str),
}

#[test]
fn every_seed_fixture_round_trips_through_its_generated_type() {
    let spec = Spec::current();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("seeds");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("seeds")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    for file in &files {
        assert!(SEEDS.iter().any(|(name, _)| name == file), "seed {file} has no conformance case: say which type it is in SEEDS");
    }
    for (file, seed) in SEEDS {
        let value = fixture_json(&format!("seeds/{file}"));
        match seed {
            Seed::Component(component) => {
                spec.validate_component(component, &value).unwrap_or_else(|e| panic!("seed {file}: {e}"));
                let roundtrip = component_roundtrip(component).expect("a generated type");
                let back = roundtrip(&value).unwrap_or_else(|e| panic!("seed {file} into {component}: {e}"));
                if let Some(d) = json_difference(&value, &back) {
                    panic!("seed {file} through {component}: {d}");
                }
            }
        }
    }
    // The video result is any JSON object to the result call, and its `video` is a File,
    // but it is no FLUX output: no endpoint in the spec answers it.
    let video = fixture_json("seeds/result-video.json");
    spec.validate_component("VideoOutput", &video).unwrap_or_else(|e| panic!("seed result-video.json: {e}"));
    let video_roundtrip = component_roundtrip("VideoOutput").expect("VideoOutput");
    assert_eq!(json_difference(&video, &video_roundtrip(&video).expect("a VideoOutput")), None, "the video seed is a VideoOutput");
    let file_roundtrip = component_roundtrip("File").expect("File");
    assert_eq!(json_difference(&video["video"], &file_roundtrip(&video["video"]).expect("a File")), None);
    let err = spec.validate_component("FluxImageOutput", &video).unwrap_err();
    assert!(err.contains("\"images\" is a required property"), "{err}");
}

/// Keys inside schemas that are no schema keyword, each a known authoring slip
/// (pointer, the description as the slip cut it). None today.
const KNOWN_STRAY_KEYWORDS: &[(&str, &str)] = &[];

#[test]
fn schemas_hold_only_schema_keywords_but_the_known_slips() {
    // A YAML flow mapping such as `{..., description: When, as ISO 8601.}` splits at the
    // comma: the description is cut short and a key with a null value appears. A JSON
    // Schema validator ignores such keys; this test does not.
    // Every schema of the document, nested ones included, as regen walks them.
    let spec = Spec::current();
    let found = xtask::lint::stray_keys(spec.document());
    for pointer in &found {
        let known = KNOWN_STRAY_KEYWORDS.iter().find(|(p, _)| p == pointer);
        assert!(known.is_some(), "{pointer} is not a schema keyword (a YAML flow mapping split at a comma?)");
    }
    for (pointer, cut_description) in KNOWN_STRAY_KEYWORDS {
        assert!(found.contains(&pointer.to_string()), "{pointer} is fixed: remove it from KNOWN_STRAY_KEYWORDS");
        assert_eq!(spec.document().pointer(pointer), Some(&Value::Null), "{pointer}");
        let (parent, _) = pointer.rsplit_once('/').expect("parent");
        assert_eq!(
            spec.document().pointer(&format!("{parent}/description")).and_then(Value::as_str),
            Some(*cut_description),
            "{parent}: the description is cut at the comma"
        );
    }
}
