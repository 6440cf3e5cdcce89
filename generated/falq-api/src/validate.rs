//! Field bounds (ranges, item counts) the spec states, checked before a request is sent.

use serde_json::Value;

/// What a [`FieldBound`] bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BoundKind {
    /// A number's value.
    Range {
        /// Whether the field is an integer.
        integer: bool,
    },
    /// An array's length.
    Items,
}

/// A bound on one field of an endpoint's input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldBound {
    /// Dotted path of the field (`num_images`, `image_size.width`).
    pub field: &'static str,
    /// What is bounded.
    pub kind: BoundKind,
    /// The smallest value allowed.
    pub min: Option<f64>,
    /// The largest value allowed.
    pub max: Option<f64>,
}

/// A value outside its field's bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundError {
    /// The field, dotted (`num_images`).
    pub field: String,
    /// The value given (for arrays, their length).
    pub value: String,
    /// The allowed range, as `1..=4`, `>= 1` or `<= 4`.
    pub allowed: String,
}

impl std::fmt::Display for BoundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} = {} is out of range: allowed {}", self.field, self.value, self.allowed)
    }
}

impl std::error::Error for BoundError {}

fn fmt_num(v: f64, integer: bool) -> String {
    if integer && v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v}") }
}

fn allowed(b: &FieldBound) -> String {
    let integer = !matches!(b.kind, BoundKind::Range { integer: false });
    let unit = if b.kind == BoundKind::Items { " items" } else { "" };
    match (b.min, b.max) {
        (Some(lo), Some(hi)) => format!("{}..={}{unit}", fmt_num(lo, integer), fmt_num(hi, integer)),
        (Some(lo), None) => format!(">= {}{unit}", fmt_num(lo, integer)),
        (None, Some(hi)) => format!("<= {}{unit}", fmt_num(hi, integer)),
        (None, None) => "any".into(),
    }
}

/// Checks a JSON input against bounds; fields that are absent or of another type
/// are left to the types and the server.
pub fn check_bounds(input: &Value, bounds: &[FieldBound]) -> Result<(), BoundError> {
    for b in bounds {
        let mut v = Some(input);
        for part in b.field.split('.') {
            v = v.and_then(|x| x.get(part));
        }
        let Some(v) = v else { continue };
        let (n, shown) = match b.kind {
            BoundKind::Range { .. } => match v.as_f64() {
                Some(n) => (n, v.to_string()),
                None => continue,
            },
            BoundKind::Items => match v.as_array() {
                Some(a) => (a.len() as f64, format!("{} items", a.len())),
                None => continue,
            },
        };
        let low = b.min.is_some_and(|m| n < m);
        let high = b.max.is_some_and(|m| n > m);
        if low || high {
            return Err(BoundError { field: b.field.to_string(), value: shown, allowed: allowed(b) });
        }
    }
    Ok(())
}

/// An input whose fields have bounds in the spec.
pub trait Validate: serde::Serialize {
    /// The bounds of this input's fields.
    fn bounds() -> &'static [FieldBound];

    /// Checks every bound; the error names the field, the value and the allowed range.
    fn validate(&self) -> Result<(), BoundError> {
        match serde_json::to_value(self) {
            Ok(v) => check_bounds(&v, Self::bounds()),
            Err(_) => Ok(()),
        }
    }
}

/// The generated client's pre-send hook: a JSON body posted to an endpoint is
/// checked against that endpoint's bounds, so nothing out of range is ever sent.
pub(crate) async fn pre_send(request: &mut reqwest::Request) -> Result<(), BoundError> {
    if request.method() != reqwest::Method::POST {
        return Ok(());
    }
    let path = request.url().path().to_string();
    let Some(endpoint) = crate::ENDPOINTS.iter().find(|e| path.ends_with(&format!("/{}", e.id))) else { return Ok(()) };
    let Some(bytes) = request.body().and_then(reqwest::Body::as_bytes) else { return Ok(()) };
    let Ok(json) = serde_json::from_slice::<Value>(bytes) else { return Ok(()) };
    check_bounds(&json, endpoint.bounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const B: &[FieldBound] = &[
        FieldBound { field: "num_images", kind: BoundKind::Range { integer: true }, min: Some(1.0), max: Some(4.0) },
        FieldBound { field: "guidance_scale", kind: BoundKind::Range { integer: false }, min: Some(1.0), max: Some(20.0) },
        FieldBound { field: "image_size.width", kind: BoundKind::Range { integer: true }, min: None, max: Some(14142.0) },
        FieldBound { field: "image_urls", kind: BoundKind::Items, min: Some(1.0), max: None },
    ];

    fn check(input: Value, expected: Result<(), &str>) {
        assert_eq!(check_bounds(&input, B).map_err(|e| e.to_string()), expected.map_err(str::to_string));
    }

    #[test]
    fn bounds_table() {
        check(json!({"num_images": 4, "guidance_scale": 1.0}), Ok(()));
        check(json!({"num_images": 5}), Err("num_images = 5 is out of range: allowed 1..=4"));
        check(json!({"num_images": 0}), Err("num_images = 0 is out of range: allowed 1..=4"));
        check(json!({"guidance_scale": 20.5}), Err("guidance_scale = 20.5 is out of range: allowed 1..=20"));
        check(json!({"image_size": "square_hd"}), Ok(()));
        check(json!({"image_size": {"width": 20000, "height": 10}}), Err("image_size.width = 20000 is out of range: allowed <= 14142"));
        check(json!({"image_urls": []}), Err("image_urls = 0 items is out of range: allowed >= 1 items"));
        check(json!({"num_images": "many"}), Ok(()));
    }
}
