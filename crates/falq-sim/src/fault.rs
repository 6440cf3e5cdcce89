//! Fault injection: the rules, their compact syntax (`submit:429@1,3`), and the pure
//! decision of which rule fires for a request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::SimError;
use crate::util::{format_duration, mix64, parse_duration, unit_interval};

/// The route a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultRoute {
    /// `POST /{endpoint_id}`.
    Submit,
    /// `GET .../requests/{id}/status`.
    Status,
    /// `GET .../requests/{id}/status/stream`.
    Stream,
    /// `GET .../requests/{id}`.
    Result,
    /// `PUT .../requests/{id}/cancel`.
    Cancel,
    /// `GET /media/{name}`.
    Media,
    /// Every one of the routes above.
    Any,
}

impl FaultRoute {
    /// The six concrete routes, in counter order.
    pub const CONCRETE: [FaultRoute; 6] =
        [FaultRoute::Submit, FaultRoute::Status, FaultRoute::Stream, FaultRoute::Result, FaultRoute::Cancel, FaultRoute::Media];

    /// The route's name in the grammar (`submit`, ..., `any`).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultRoute::Submit => "submit",
            FaultRoute::Status => "status",
            FaultRoute::Stream => "stream",
            FaultRoute::Result => "result",
            FaultRoute::Cancel => "cancel",
            FaultRoute::Media => "media",
            FaultRoute::Any => "any",
        }
    }

    fn index(self) -> usize {
        match self {
            FaultRoute::Submit => 0,
            FaultRoute::Status => 1,
            FaultRoute::Stream => 2,
            FaultRoute::Result => 3,
            FaultRoute::Cancel => 4,
            FaultRoute::Media => 5,
            FaultRoute::Any => 6,
        }
    }
}

impl fmt::Display for FaultRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultRoute {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "submit" => FaultRoute::Submit,
            "status" => FaultRoute::Status,
            "stream" => FaultRoute::Stream,
            "result" => FaultRoute::Result,
            "cancel" => FaultRoute::Cancel,
            "media" => FaultRoute::Media,
            "any" | "*" => FaultRoute::Any,
            other => {
                return Err(syntax(s, format!("unknown route {other:?}: expected submit, status, stream, result, cancel, media or any")));
            }
        })
    }
}

/// What a fault does to the request it hits.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Answer this HTTP status with a fal-like error body instead of handling the request.
    Status {
        /// The status, 400..=599.
        code: u16,
        /// For 429: the `Retry-After` to send (1 s when `None`).
        retry_after: Option<Duration>,
        /// The `error_type` of the body and the `X-Fal-Error-Type` header (a default for 5xx when `None`).
        error_type: Option<String>,
    },
    /// Close the connection without answering (a TCP reset).
    Reset,
    /// Wait this long, then answer normally.
    Stall(Duration),
    /// Answer normally, but with the body cut in half (see [`FaultRule`]).
    Malformed,
}

impl FaultKind {
    /// A plain status fault with the defaults (`Retry-After: 1`, the default `error_type`).
    pub fn status(code: u16) -> FaultKind {
        FaultKind::Status { code, retry_after: None, error_type: None }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Status { code, retry_after, error_type } => {
                write!(f, "{code}")?;
                if let Some(d) = retry_after {
                    write!(f, "={}", format_duration(*d))?;
                } else if let Some(t) = error_type {
                    write!(f, "={t}")?;
                }
                Ok(())
            }
            FaultKind::Reset => f.write_str("reset"),
            FaultKind::Stall(d) => write!(f, "stall={}", format_duration(*d)),
            FaultKind::Malformed => f.write_str("malformed"),
        }
    }
}

/// Which requests on the route a rule hits.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultWhen {
    /// Every request.
    Always,
    /// The requests whose 1-based count on the route falls in one of these inclusive ranges.
    Nth(Vec<(u64, u64)>),
    /// This percentage of requests (0–100), drawn deterministically from the sim's seed.
    Rate(f64),
}

impl fmt::Display for FaultWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultWhen::Always => Ok(()),
            FaultWhen::Nth(ranges) => {
                f.write_str("@")?;
                for (i, (lo, hi)) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if lo == hi {
                        write!(f, "{lo}")?;
                    } else {
                        write!(f, "{lo}-{hi}")?;
                    }
                }
                Ok(())
            }
            FaultWhen::Rate(p) => write!(f, "%{p}"),
        }
    }
}

/// One fault rule: a route, what happens, and when. Parses from ([`FromStr`]) and prints as
/// ([`fmt::Display`]) a compact syntax; serializes as that string.
///
/// # Grammar
///
/// ```text
/// plan     = rule *( ";" | whitespace ) rule     (FaultPlan::from_str; or one rule per --fault)
/// rule     = route ":" kind [ when ]
/// route    = "submit" | "status" | "stream" | "result" | "cancel" | "media" | "any" | "*"
/// kind     = code [ "=" param ]   an HTTP status 400..=599 with a fal-like error body;
///                                 for 429 param is the Retry-After duration (default 1s),
///                                 for any other code the error_type (5xx defaults below)
///          | "reset"              close the connection without answering (TCP RST)
///          | "stall=" duration    wait that long, then answer normally
///          | "malformed"          answer normally but with the body cut in half: invalid JSON;
///                                 on media, half the file under the whole Content-Length
///                                 (the download fails mid-body); on streams, the first
///                                 event's JSON is cut
/// when     = "@" nth *( "," nth )  the nth requests on that route (1-based), N or N-M
///          | "%" percent           that share of requests, drawn from the sim's seed
///          (absent)                every request
/// duration = number [ "ms" | "s" | "m" | "h" ]   (a bare number is seconds, fractions too)
/// ```
///
/// Examples: `submit:429@1,3`, `status:503%20`, `result:422%100`, `status:stall=2s%10`,
/// `submit:reset@1`, `status:malformed@2`, `any:502=runner_disconnected@5-7`, `submit:429=3s`.
///
/// Counting: each route counts its requests from the moment the plan is installed (1 is the
/// first); `any` rules count all routes together. Rules are tried in order; the first that
/// fires wins. A rate rule draws a number from (seed, rule index, route, count), so a run is
/// reproducible whatever the interleaving of other routes.
///
/// `result:422` is special: it is not a per-call fault but a **job failure**. It is decided
/// once per job when the job completes (its `@n` counts completed jobs, cancelled ones
/// excluded): such a job still ends `COMPLETED`, and every result call about it answers
/// `422 {"detail":[{"loc":["body"],"msg":...,"type":"value_error"}]}`, as fal reports a
/// failed run. Every other rule, `any:422` included, applies call by call.
///
/// Default `error_type` (also sent as `X-Fal-Error-Type`): 500 `internal_error`,
/// 502 `runner_disconnected`, 503 `runner_scheduling_failure`, 504 `request_timeout`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// The route it applies to.
    pub route: FaultRoute,
    /// What it does.
    pub kind: FaultKind,
    /// Which requests it hits.
    pub when: FaultWhen,
}

impl FaultRule {
    /// Whether this is the job-failure rule (`result:422`), decided once per job at completion.
    pub fn is_job_failure(&self) -> bool {
        self.route == FaultRoute::Result && matches!(self.kind, FaultKind::Status { code: 422, .. })
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}{}", self.route, self.kind, self.when)
    }
}

impl FromStr for FaultRule {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let (route, rest) = text.split_once(':').ok_or_else(|| syntax(s, "expected route:kind, as in submit:429@1,3".into()))?;
        let route = route
            .parse::<FaultRoute>()
            .map_err(|_| syntax(s, format!("unknown route {route:?}: expected submit, status, stream, result, cancel, media or any")))?;
        let split = rest.find(['@', '%']).unwrap_or(rest.len());
        let (kind, when) = rest.split_at(split);
        Ok(FaultRule { route, kind: parse_kind(s, kind)?, when: parse_when(s, when)? })
    }
}

impl serde::Serialize for FaultRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FaultRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An ordered list of fault rules; serializes as a JSON array of rule strings.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct FaultPlan {
    /// The rules, tried in order.
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl FromIterator<FaultRule> for FaultPlan {
    fn from_iter<T: IntoIterator<Item = FaultRule>>(iter: T) -> Self {
        FaultPlan { rules: iter.into_iter().collect() }
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

impl FromStr for FaultPlan {
    type Err = SimError;

    /// Rules separated by `;` or whitespace; an empty string is no faults.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(|c: char| c == ';' || c.is_whitespace()).filter(|r| !r.is_empty()).map(str::parse).collect()
    }
}

fn syntax(rule: &str, reason: String) -> SimError {
    SimError::FaultSyntax { rule: rule.trim().to_string(), reason }
}

fn parse_kind(rule: &str, text: &str) -> Result<FaultKind, SimError> {
    let (name, param) = match text.split_once('=') {
        Some((n, p)) => (n, Some(p)),
        None => (text, None),
    };
    match (name, param) {
        ("reset", None) => Ok(FaultKind::Reset),
        ("malformed", None) => Ok(FaultKind::Malformed),
        ("stall", Some(p)) => parse_duration(p)
            .map(FaultKind::Stall)
            .ok_or_else(|| syntax(rule, format!("bad duration {p:?}: expected 500ms, 2s, 1.5s or 1m"))),
        ("stall", None) => Err(syntax(rule, "stall needs a duration, as in stall=2s".into())),
        ("reset" | "malformed", Some(_)) => Err(syntax(rule, format!("{name} takes no parameter"))),
        _ => {
            let code: u16 = name.parse().map_err(|_| {
                syntax(rule, format!("unknown fault {name:?}: expected an HTTP status, reset, stall=DURATION or malformed"))
            })?;
            if !(400..=599).contains(&code) {
                return Err(syntax(rule, format!("status {code} is not an error: expected 400..=599")));
            }
            match param {
                None => Ok(FaultKind::status(code)),
                Some(p) if code == 429 => parse_duration(p)
                    .map(|d| FaultKind::Status { code, retry_after: Some(d), error_type: None })
                    .ok_or_else(|| syntax(rule, format!("bad Retry-After {p:?}: expected a duration such as 2s"))),
                Some(p) => {
                    let ok = !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !ok {
                        return Err(syntax(rule, format!("bad error_type {p:?}: expected a word such as runner_disconnected")));
                    }
                    Ok(FaultKind::Status { code, retry_after: None, error_type: Some(p.to_string()) })
                }
            }
        }
    }
}

fn parse_when(rule: &str, text: &str) -> Result<FaultWhen, SimError> {
    if text.is_empty() {
        return Ok(FaultWhen::Always);
    }
    if let Some(p) = text.strip_prefix('%') {
        let ok_chars = !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.');
        let rate: f64 = if ok_chars { p.parse().unwrap_or(f64::NAN) } else { f64::NAN };
        if !(0.0..=100.0).contains(&rate) {
            return Err(syntax(rule, format!("bad rate {p:?}: expected a percentage 0..=100")));
        }
        return Ok(FaultWhen::Rate(rate));
    }
    let list = text.strip_prefix('@').unwrap_or(text);
    let mut ranges = Vec::new();
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let parse = |n: &str| n.trim().parse::<u64>().ok().filter(|&n| n >= 1);
        match (parse(lo), parse(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => ranges.push((lo, hi)),
            _ => {
                return Err(syntax(rule, format!("bad schedule {part:?}: expected N or N-M, counting from 1")));
            }
        }
    }
    Ok(FaultWhen::Nth(ranges))
}

/// Whether a rule with this `when` fires for the `n`-th request (1-based), given a draw in `[0, 1)`.
pub(crate) fn fires(when: &FaultWhen, n: u64, draw: f64) -> bool {
    match when {
        FaultWhen::Always => true,
        FaultWhen::Nth(ranges) => ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&n)),
        FaultWhen::Rate(percent) => draw * 100.0 < *percent,
    }
}

fn draw(seed: u64, rule_index: usize, route: FaultRoute, n: u64) -> f64 {
    let key = (rule_index as u64) << 40 ^ (route.index() as u64) << 56 ^ n;
    unit_interval(mix64(seed ^ mix64(key)))
}

/// The live fault state: the plan, the seed and the per-route request counts.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    plan: FaultPlan,
    seed: u64,
    /// Requests per concrete route, then all routes together.
    counts: [u64; 7],
    jobs_completed: u64,
}

impl FaultEngine {
    pub(crate) fn new(plan: FaultPlan, seed: u64) -> FaultEngine {
        FaultEngine { plan, seed, counts: [0; 7], jobs_completed: 0 }
    }

    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Installs a new plan; counting starts again from 1.
    pub(crate) fn replace(&mut self, plan: FaultPlan) {
        *self = FaultEngine::new(plan, self.seed);
    }

    /// Counts a request on `route` and answers the fault to inject, if any.
    pub(crate) fn on_request(&mut self, route: FaultRoute) -> Option<FaultKind> {
        let i = route.index();
        self.counts[i] += 1;
        self.counts[6] += 1;
        let (n, total) = (self.counts[i], self.counts[6]);
        self.plan.rules.iter().enumerate().find_map(|(index, rule)| {
            if rule.is_job_failure() {
                return None;
            }
            let count = match rule.route {
                FaultRoute::Any => total,
                r if r == route => n,
                _ => return None,
            };
            fires(&rule.when, count, draw(self.seed, index, rule.route, count)).then(|| rule.kind.clone())
        })
    }

    /// Counts a completed job and answers whether a `result:422` rule fails it.
    pub(crate) fn on_job_completed(&mut self) -> bool {
        self.jobs_completed += 1;
        let n = self.jobs_completed;
        self.plan
            .rules
            .iter()
            .enumerate()
            .any(|(index, rule)| rule.is_job_failure() && fires(&rule.when, n, draw(self.seed, index, FaultRoute::Result, n)))
    }
}

/// The default `error_type` of an injected status.
pub(crate) fn default_error_type(code: u16) -> Option<&'static str> {
    match code {
        500 => Some("internal_error"),
        502 => Some("runner_disconnected"),
        503 => Some("runner_scheduling_failure"),
        504 => Some("request_timeout"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> FaultRule {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn grammar_table() {
        let check = |text: &str, route: FaultRoute, kind: FaultKind, when: FaultWhen| {
            assert_eq!(rule(text), FaultRule { route, kind, when }, "{text}");
        };
        use FaultRoute::*;
        check("submit:429@1,3", Submit, FaultKind::status(429), FaultWhen::Nth(vec![(1, 1), (3, 3)]));
        check("status:503%20", Status, FaultKind::status(503), FaultWhen::Rate(20.0));
        check("result:422%100", Result, FaultKind::status(422), FaultWhen::Rate(100.0));
        check("status:stall=2s%10", Status, FaultKind::Stall(Duration::from_secs(2)), FaultWhen::Rate(10.0));
        check("submit:reset@1", Submit, FaultKind::Reset, FaultWhen::Nth(vec![(1, 1)]));
        check("status:malformed@2", Status, FaultKind::Malformed, FaultWhen::Nth(vec![(2, 2)]));
        check("stream:reset", Stream, FaultKind::Reset, FaultWhen::Always);
        check("media:500@2-4,9", Media, FaultKind::status(500), FaultWhen::Nth(vec![(2, 4), (9, 9)]));
        check(
            "*:502=runner_disconnected%2.5",
            Any,
            FaultKind::Status { code: 502, retry_after: None, error_type: Some("runner_disconnected".into()) },
            FaultWhen::Rate(2.5),
        );
        check(
            "cancel:429=3s",
            Cancel,
            FaultKind::Status { code: 429, retry_after: Some(Duration::from_secs(3)), error_type: None },
            FaultWhen::Always,
        );
        check("status:stall=250ms", Status, FaultKind::Stall(Duration::from_millis(250)), FaultWhen::Always);
    }

    #[test]
    fn grammar_errors_table() {
        for bad in [
            "",
            "submit",
            "upload:429",
            "submit:",
            "submit:200",
            "submit:600",
            "submit:teapot",
            "submit:429@0",
            "submit:429@3-1",
            "submit:429@",
            "submit:429@a",
            "submit:429%101",
            "submit:429%",
            "submit:429%-5",
            "status:stall",
            "status:stall=soon",
            "status:reset=1s",
            "status:malformed=yes",
            "status:429=fast",
            "status:503=bad type",
        ] {
            assert!(matches!(bad.parse::<FaultRule>(), Err(SimError::FaultSyntax { .. })), "{bad:?} parsed");
        }
    }

    #[test]
    fn rules_print_back_to_what_they_parse_from() {
        for text in [
            "submit:429@1,3",
            "status:503%20",
            "result:422%100",
            "status:stall=2s%10",
            "submit:reset@1",
            "status:malformed@2",
            "any:502=runner_disconnected@5-7",
            "cancel:429=1500ms",
            "media:404",
        ] {
            assert_eq!(rule(text).to_string(), text);
        }
    }

    #[test]
    fn plans_split_on_semicolons_and_whitespace_and_round_trip_through_json() {
        let plan: FaultPlan = "submit:429@1,3; status:503%20  result:422@2".parse().unwrap();
        assert_eq!(plan.rules.len(), 3);
        assert_eq!(plan.to_string(), "submit:429@1,3; status:503%20; result:422@2");
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(json, r#"["submit:429@1,3","status:503%20","result:422@2"]"#);
        assert_eq!(serde_json::from_str::<FaultPlan>(&json).unwrap(), plan);
        assert!("".parse::<FaultPlan>().unwrap().is_empty());
        assert!("submit:429 nonsense".parse::<FaultPlan>().is_err());
    }

    #[test]
    fn fires_table() {
        let nth = FaultWhen::Nth(vec![(1, 1), (3, 5)]);
        for (n, expected) in [(1, true), (2, false), (3, true), (5, true), (6, false)] {
            assert_eq!(fires(&nth, n, 0.0), expected, "n={n}");
        }
        assert!(fires(&FaultWhen::Always, 42, 0.99));
        assert!(fires(&FaultWhen::Rate(20.0), 1, 0.19));
        assert!(!fires(&FaultWhen::Rate(20.0), 1, 0.20));
        assert!(!fires(&FaultWhen::Rate(0.0), 1, 0.0));
        assert!(fires(&FaultWhen::Rate(100.0), 1, 0.999_999));
    }

    #[test]
    fn schedules_count_per_route_from_installation() {
        let mut engine = FaultEngine::new("submit:429@1,3".parse().unwrap(), 1);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(engine.on_request(FaultRoute::Submit).is_some());
            assert_eq!(engine.on_request(FaultRoute::Status), None);
        }
        assert_eq!(seen, vec![true, false, true, false]);
        engine.replace("submit:500@1".parse().unwrap());
        assert_eq!(engine.on_request(FaultRoute::Submit), Some(FaultKind::status(500)));
    }

    #[test]
    fn any_rules_count_all_routes_and_first_rule_wins() {
        let mut engine = FaultEngine::new("status:504@2; any:503@2".parse().unwrap(), 1);
        assert_eq!(engine.on_request(FaultRoute::Submit), None);
        assert_eq!(engine.on_request(FaultRoute::Status), Some(FaultKind::status(503)));
        assert_eq!(engine.on_request(FaultRoute::Status), Some(FaultKind::status(504)));
    }

    #[test]
    fn rates_are_deterministic_and_roughly_right() {
        let run = |seed| {
            let mut engine = FaultEngine::new("status:503%20".parse().unwrap(), seed);
            (0..2000).map(|_| engine.on_request(FaultRoute::Status).is_some()).collect::<Vec<_>>()
        };
        let a = run(9);
        assert_eq!(a, run(9));
        assert_ne!(a, run(10));
        let hits = a.iter().filter(|&&x| x).count();
        assert!((300..500).contains(&hits), "{hits} of 2000 at 20%");
    }

    #[test]
    fn result_422_is_a_job_failure_not_a_call_fault() {
        let mut engine = FaultEngine::new("result:422@2".parse().unwrap(), 1);
        assert_eq!(engine.on_request(FaultRoute::Result), None);
        assert_eq!(engine.on_request(FaultRoute::Result), None);
        assert_eq!((0..3).map(|_| engine.on_job_completed()).collect::<Vec<_>>(), vec![false, true, false]);
        let mut calls = FaultEngine::new("any:422".parse().unwrap(), 1);
        assert_eq!(calls.on_request(FaultRoute::Result), Some(FaultKind::status(422)));
        assert!(!calls.on_job_completed());
    }
}
