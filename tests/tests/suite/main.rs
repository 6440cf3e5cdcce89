//! The workspace-level test suite, one binary (one link instead of fourteen): the
//! conformance suite against the normalized spec, the generated client on its own, and
//! `falq::Client` end to end against the simulator and mock relays on 127.0.0.1.

mod bad_relays;
mod conformance_client;
mod conformance_constraints;
mod conformance_drift;
mod conformance_examples;
mod conformance_properties;
mod conformance_requests;
mod conformance_responses;
mod conformance_sim;
mod e2e_sim;
mod generated_api;
mod many;
mod paid_jobs;
mod queue_rules;
mod waiting;
