//! Cost: the user's price list (`prices.toml`), what a job is estimated to cost before it
//! is sent, and money as exact amounts.
//!
//! The table is the user's (their relay's price list): per endpoint id, a price per
//! request, a price per unit of an input field (`num_images`, a video's `duration` such
//! as `"8s"`), or both. A line that does not set the unit field counts its default. An
//! endpoint with no entry is "unpriced". Amounts are kept in millionths, so sums are exact
//! (0.025 × 40 is 1.00, not 0.9999999).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inputs::{Target, Usage};

/// An amount of money in millionths of the price list's currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub u64);

/// Millionths in one unit of currency.
const MICROS: u64 = 1_000_000;

impl Money {
    /// An amount from a decimal number (a price in the table); `None` if negative, not a
    /// number, or beyond any price.
    pub fn from_f64(x: f64) -> Option<Money> {
        (0.0..1e12).contains(&x).then(|| Money((x * MICROS as f64).round() as u64))
    }

    /// An amount as written on the command line (`0.50`, `12`, `1.000001`).
    pub fn parse(text: &str) -> Result<Money, String> {
        let t = text.trim();
        let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 || whole.len() > 12 {
            return Err(format!("{text:?} is not an amount (a number such as 0.50, at most 6 decimals)"));
        }
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| format!("{text:?} is too large"))? };
        let frac: u64 = format!("{frac:0<6}").parse().unwrap_or(0);
        Ok(Money(whole * MICROS + frac))
    }

    /// As a number (for JSON).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / MICROS as f64
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.saturating_add(o.0))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, o: Money) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money(0), |a, b| a + b)
    }
}

/// Two decimals at least, as many as the amount needs beyond (`1.00`, `0.075`).
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / MICROS, self.0 % MICROS);
        let mut digits = format!("{frac:06}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{whole}.{digits}")
    }
}

/// What one endpoint costs.
#[derive(Clone, Debug, PartialEq)]
pub struct Price {
    /// Paid for every request.
    pub per_request: Money,
    /// Paid per unit of `unit`.
    pub per_unit: Money,
    /// The input field whose value counts the units (`num_images`, `duration`).
    pub unit: Option<String>,
    /// The line of its entry in the table.
    pub line: usize,
}

/// The user's price list.
#[derive(Clone, Debug, Default)]
pub struct Prices {
    /// Where it was read from (`None`: no table).
    pub source: Option<PathBuf>,
    /// How amounts are labelled (`USD`), if the table says.
    pub currency: Option<String>,
    entries: BTreeMap<String, Price>,
}

/// What a job is estimated to cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The units it is charged for (1 for a price per request only).
    pub units: f64,
    /// The input field that counted them, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The estimated cost.
    pub cost: Money,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    per_request: Option<f64>,
    per_unit: Option<f64>,
    unit: Option<String>,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Prices {
    /// The table at `path` (`--prices`), or `$FALQ_HOME/prices.toml` when it exists, else
    /// an empty table (everything unpriced).
    pub fn load(explicit: Option<&Path>, home: &Path) -> Result<Prices, Usage> {
        let (path, named_by) = match explicit {
            Some(p) => (p.to_path_buf(), "--prices"),
            None => {
                let p = home.join("prices.toml");
                if !p.exists() {
                    return Ok(Prices::default());
                }
                (p, "the price list in FALQ_HOME")
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Usage(format!("{named_by} {}: cannot read it: {e}; nothing was sent", path.display())))?;
        Prices::parse(&text, &path)
    }

    /// Reads a table; every mistake is an error naming its line.
    pub fn parse(text: &str, path: &Path) -> Result<Prices, Usage> {
        let at = |line: usize, what: String| Usage(format!("{}:{line}: {what}; nothing was sent", path.display()));
        let doc: BTreeMap<String, toml::Spanned<toml::Value>> = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            at(line, format!("not a price table: {}", e.message().trim()))
        })?;
        let mut prices = Prices { source: Some(path.to_path_buf()), ..Prices::default() };
        for (key, value) in doc {
            let line = line_of(text, value.span().start);
            let value = value.into_inner();
            if key == "currency" {
                match value {
                    toml::Value::String(c) if !c.trim().is_empty() => prices.currency = Some(c.trim().to_string()),
                    _ => return Err(at(line, "currency is a name such as \"USD\"".into())),
                }
                continue;
            }
            if !key.contains('/') {
                return Err(at(
                    line,
                    format!("{key:?} is no endpoint id (such as [\"fal-ai/flux-1/dev\"]) and no setting falq knows (currency)"),
                ));
            }
            let toml::Value::Table(_) = value else {
                return Err(at(
                    line,
                    format!("{key}: a price is a table: [\"{key}\"] then per_request = ..., per_unit = ..., unit = \"...\""),
                ));
            };
            let raw: RawPrice = value.try_into().map_err(|e: toml::de::Error| at(line, format!("{key}: {}", e.message().trim())))?;
            let money = |name: &str, x: Option<f64>| -> Result<Money, Usage> {
                match x {
                    None => Ok(Money(0)),
                    Some(x) => {
                        Money::from_f64(x).ok_or_else(|| at(line, format!("{key}: {name} = {x} is not a price (a number, 0 or more)")))
                    }
                }
            };
            let price = Price {
                per_request: money("per_request", raw.per_request)?,
                per_unit: money("per_unit", raw.per_unit)?,
                unit: raw.unit,
                line,
            };
            match (&price.unit, raw.per_unit, raw.per_request) {
                (None, Some(_), _) => {
                    return Err(at(line, format!("{key}: per_unit needs the input field that counts the units: unit = \"num_images\"")));
                }
                (Some(u), None, _) => return Err(at(line, format!("{key}: unit = {u:?} needs per_unit, the price of one"))),
                (None, None, None) => return Err(at(line, format!("{key}: no price: per_request, or per_unit with unit"))),
                _ => {}
            }
            // A unit that is no countable field of a catalogue endpoint is a mistake now,
            // not a surprise at the first line of a batch.
            if let (Some(unit), Some(info)) = (&price.unit, falq_api::endpoint(&key)) {
                match info.fields.iter().find(|f| f.name == unit) {
                    None => {
                        let countable: Vec<&str> =
                            info.fields.iter().filter(|f| matches!(f.kind, "integer" | "number" | "string")).map(|f| f.name).collect();
                        return Err(at(
                            line,
                            format!("{key}: unit {unit:?} is no field of its input (fields that can count: {})", countable.join(", ")),
                        ));
                    }
                    Some(f) if !matches!(f.kind, "integer" | "number" | "string") => {
                        return Err(at(line, format!("{key}: unit {unit:?} is a {} field and counts nothing", f.kind)));
                    }
                    Some(_) => {}
                }
            }
            prices.entries.insert(key, price);
        }
        Ok(prices)
    }

    /// The price of an endpoint, if the table has one.
    pub fn of(&self, endpoint_id: &str) -> Option<&Price> {
        self.entries.get(endpoint_id)
    }

    /// What a job of `endpoint` with `input` is estimated to cost: `Ok(None)` when the
    /// endpoint is unpriced, an error when its units cannot be counted (the unit field is
    /// not set, has no default, or holds no number).
    pub fn estimate(&self, endpoint: Target, input: &Value) -> Result<Option<Estimate>, String> {
        let Some(price) = self.of(endpoint.id) else { return Ok(None) };
        let Some(unit) = &price.unit else {
            return Ok(Some(Estimate { units: 1.0, unit: None, cost: price.per_request }));
        };
        let default = endpoint
            .info
            .and_then(|i| i.fields.iter().find(|f| f.name == unit))
            .and_then(|f| f.default)
            .and_then(|d| serde_json::from_str::<Value>(d).ok());
        let value = match input.get(unit).filter(|v| !v.is_null()) {
            Some(v) => v.clone(),
            None => default.ok_or_else(|| format!("{unit} is not set and has no default: its units (and cost) cannot be counted"))?,
        };
        let units = count(&value).ok_or_else(|| format!("{unit} = {value} counts no units (a number, or text such as \"8s\")"))?;
        let per_units = (price.per_unit.0 as f64 * units).round() as u64;
        Ok(Some(Estimate { units, unit: Some(unit.clone()), cost: price.per_request + Money(per_units) }))
    }

    /// `0.50 USD`, or `0.50` when the table names no currency.
    pub fn show(&self, m: Money) -> String {
        match &self.currency {
            Some(c) => format!("{m} {c}"),
            None => m.to_string(),
        }
    }
}

/// The units a value counts: a number, or the number text starts with (`"8s"`, `"10 seconds"`).
fn count(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
            s[..end].parse::<f64>().ok()?
        }
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// Estimated spend, by endpoint: (jobs, units, cost), and jobs that had no price.
#[derive(Clone, Debug, Default)]
pub struct Spend {
    by_endpoint: BTreeMap<String, (usize, f64, Money, Option<String>)>,
    unpriced: BTreeMap<String, usize>,
    billed: BTreeMap<String, f64>,
}

impl Spend {
    /// Counts one job.
    pub fn add(&mut self, endpoint: &str, estimate: Option<&Estimate>, billed_units: Option<f64>) {
        match estimate {
            Some(e) => {
                let entry = self.by_endpoint.entry(endpoint.to_string()).or_insert((0, 0.0, Money(0), e.unit.clone()));
                entry.0 += 1;
                entry.1 += e.units;
                entry.2 += e.cost;
            }
            None => *self.unpriced.entry(endpoint.to_string()).or_default() += 1,
        }
        if let Some(b) = billed_units {
            *self.billed.entry(endpoint.to_string()).or_default() += b;
        }
    }

    /// The estimated total.
    pub fn total(&self) -> Money {
        self.by_endpoint.values().map(|v| v.2).sum()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.by_endpoint.is_empty() && self.unpriced.is_empty()
    }

    /// One line per endpoint and one for the total: `fal-ai/flux-1/dev: 20 jobs, 40
    /// num_images, 1.00 (billed: 40 units)`.
    pub fn lines(&self, currency: Option<&str>) -> Vec<String> {
        let show = |m: Money| currency.map_or_else(|| m.to_string(), |c| format!("{m} {c}"));
        let mut out = Vec::new();
        for (endpoint, (jobs, units, cost, unit)) in &self.by_endpoint {
            let units = match unit {
                Some(u) => format!(", {} {u}", trim_units(*units)),
                None => String::new(),
            };
            let billed = self.billed.get(endpoint).map(|b| format!(" (billed: {} units)", trim_units(*b))).unwrap_or_default();
            out.push(format!("{endpoint}: {jobs} job(s){units}, {}{billed}", show(*cost)));
        }
        for (endpoint, jobs) in &self.unpriced {
            out.push(format!("{endpoint}: {jobs} job(s), unpriced (no price in the price table)"));
        }
        out.push(format!("total: {}{}", show(self.total()), if self.unpriced.is_empty() { "" } else { " and the unpriced jobs" }));
        out
    }
}

/// Units as a person writes them: `40`, `7.5`.
pub fn trim_units(u: f64) -> String {
    if u.fract() == 0.0 && u.abs() < 1e15 { format!("{}", u as i64) } else { format!("{u}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Prices, String> {
        Prices::parse(text, Path::new("prices.toml")).map_err(|e| e.0)
    }

    #[test]
    fn money_is_exact_and_shown_with_the_decimals_it_needs() {
        assert_eq!(Money::parse("0.50").unwrap(), Money(500_000));
        assert_eq!(Money::parse("12").unwrap(), Money(12_000_000));
        assert_eq!(Money::parse(".5").unwrap(), Money(500_000));
        for bad in ["", ".", "-1", "1.0000001", "1,5", "$1", "1e3", "abc"] {
            assert!(Money::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Money(1_000_000).to_string(), "1.00");
        assert_eq!(Money(75_000).to_string(), "0.075");
        assert_eq!(Money(0).to_string(), "0.00");
        // 40 × 0.025 is exactly 1.00.
        let sum: Money = (0..40).map(|_| Money::from_f64(0.025).unwrap()).sum();
        assert_eq!(sum.to_string(), "1.00");
        assert_eq!(Money::from_f64(-0.1), None);
        assert_eq!(Money::from_f64(f64::NAN), None);
    }

    #[test]
    fn a_price_counts_units_of_an_input_field_or_its_default() {
        let p = parse("currency = \"USD\"\n[\"fal-ai/flux-1/dev\"]\nper_unit = 0.025\nunit = \"num_images\"\n[\"fal-ai/veo3\"]\nper_request = 0.1\nper_unit = 0.75\nunit = \"duration\"\n[\"acme/untyped\"]\nper_request = 2\n").unwrap();
        let dev = Target::of_id("fal-ai/flux-1/dev");
        let e = p.estimate(dev, &json!({"prompt": "a", "num_images": 2})).unwrap().unwrap();
        assert_eq!((e.units, e.cost.to_string()), (2.0, "0.05".to_string()));
        // Not set: the field's default, as the catalogue gives it.
        let default: f64 =
            dev.info.unwrap().fields.iter().find(|f| f.name == "num_images").and_then(|f| f.default).unwrap().parse().unwrap();
        let e = p.estimate(dev, &json!({"prompt": "a"})).unwrap().unwrap();
        assert_eq!(e.units, default);
        // "8s" counts 8, plus the price per request.
        let veo = Target::of_id("fal-ai/veo3");
        let e = p.estimate(veo, &json!({"prompt": "a", "duration": "8s"})).unwrap().unwrap();
        assert_eq!((e.units, p.show(e.cost)), (8.0, "6.10 USD".to_string()));
        assert!(p.estimate(veo, &json!({"duration": true})).unwrap_err().contains("counts no units"));
        // An endpoint without a page, priced per request; one not in the table: unpriced.
        assert_eq!(p.estimate(Target::of_id("acme/untyped"), &json!({})).unwrap().unwrap().cost, Money(2_000_000));
        assert_eq!(p.estimate(Target::of_id("fal-ai/flux-1/schnell"), &json!({})).unwrap(), None);
        assert!(p.estimate(Target::of_id("acme/none"), &json!({})).unwrap().is_none());
    }

    #[test]
    fn a_malformed_table_is_an_error_naming_its_line() {
        let cases = [
            ("[\"fal-ai/flux-1/dev\"]\nper_unit = = 1\n", "prices.toml:2: not a price table"),
            ("[\"fal-ai/flux-1/dev\"]\nper_unit = 0.025\n", "prices.toml:1: fal-ai/flux-1/dev: per_unit needs the input field"),
            ("\n[\"fal-ai/flux-1/dev\"]\nprice = 1\n", "prices.toml:2: fal-ai/flux-1/dev: unknown field `price`"),
            ("[\"fal-ai/flux-1/dev\"]\nper_request = -1\n", "per_request = -1 is not a price"),
            ("[\"fal-ai/flux-1/dev\"]\nper_request = \"cheap\"\n", "prices.toml:1: fal-ai/flux-1/dev: invalid type"),
            ("[\"fal-ai/flux-1/dev\"]\nper_unit = 1\nunit = \"images\"\n", "unit \"images\" is no field of its input"),
            ("[\"fal-ai/flux-1/dev\"]\nper_unit = 1\nunit = \"enable_safety_checker\"\n", "is a boolean field and counts nothing"),
            ("[\"fal-ai/flux-1/dev\"]\n", "no price"),
            ("a = 1\n[\"fal-ai/x\"]\nper_request = 1\n", "prices.toml:1: \"a\" is no endpoint id"),
            ("\"fal-ai/x\" = 3\n", "prices.toml:1: fal-ai/x: a price is a table"),
            ("[\"a/b\"]\nper_request = 1\n[\"a/b\"]\nper_request = 2\n", "prices.toml:3: not a price table"),
        ];
        for (text, says) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(e.contains("nothing was sent"), "{e}");
        }
    }

    #[test]
    fn spend_is_summed_per_endpoint_with_units_and_the_unpriced_said() {
        let mut s = Spend::default();
        let e = Estimate { units: 2.0, unit: Some("num_images".into()), cost: Money(50_000) };
        for _ in 0..20 {
            s.add("fal-ai/flux-1/dev", Some(&e), Some(2.0));
        }
        s.add("acme/x", None, None);
        let lines = s.lines(Some("USD"));
        assert_eq!(lines[0], "fal-ai/flux-1/dev: 20 job(s), 40 num_images, 1.00 USD (billed: 40 units)");
        assert_eq!(lines[1], "acme/x: 1 job(s), unpriced (no price in the price table)");
        assert_eq!(lines[2], "total: 1.00 USD and the unpriced jobs");
        assert_eq!(s.total(), Money(1_000_000));
    }
}
