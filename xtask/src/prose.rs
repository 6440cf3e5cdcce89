//! Reading the pages' prose: the wordings in which relays state a field's default, range,
//! allowed values and optionality in its description (`默认值："16:9"`, `范围值：2-40`,
//! `枚举值：16：9、9：16、auto`, `Enumerated values: 'none', 'regular'`, `Range: 1-4`),
//! with full-width punctuation read as the ASCII it stands for.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

/// The text with full-width ASCII variants (`：`, `，`, `１`, `（`) and the ideographic space
/// read as the ASCII they stand for; every other character kept.
pub fn ascii_punctuation(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

/// Whether a value holds ideographs or kana (text meant for people, kept as written).
fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF))
}

/// A value as falq sends and checks it: full-width punctuation inside a value that is no
/// text for people (`16：9`, `１０２４`) read as ASCII (`16:9`); text with ideographs kept.
pub fn ascii_value(value: &str) -> Option<String> {
    let ascii = ascii_punctuation(value);
    (ascii != value && !has_cjk(value)).then_some(ascii)
}

fn schema_type(m: &Map<String, Value>) -> &str {
    m.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Whether a description says the field is optional (`可选`, `选填`, `optional`) and does
/// not also say it is required (`必填`).
pub fn says_optional(desc: &str) -> bool {
    static OPTIONAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)可选|选填|非必填|非必须|\boptional\b").expect("regex"));
    static REQUIRED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)必填|必须|必需|\brequired\b").expect("regex"));
    // `可选值` names allowed values, not optionality.
    let desc = desc.replace("可选值", "");
    let without_negated = desc.replace("非必填", "").replace("非必须", "");
    OPTIONAL.is_match(&desc) && !REQUIRED.is_match(&without_negated)
}

/// The default a description states, typed by the schema: `默认28`, `默认值3.5`,
/// `默认为1`, `默认 jpeg` (an enum value), `Default: 4`, `default: "jpeg"`, `默认true`,
/// `默认值："16：9"` (read as `16:9`).
pub fn default_in_prose(desc: &str, schema: &Map<String, Value>) -> Option<Value> {
    let (token, quoted) = stated_default(desc)?;
    let token = token.as_str();
    match schema_type(schema) {
        "integer" => token.parse::<i64>().ok().map(Value::from),
        "number" => token.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
        "boolean" => match token.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        "string" => match schema.get("enum").and_then(Value::as_array) {
            Some(values) => values.iter().find(|v| v.as_str() == Some(token)).cloned(),
            None if quoted => Some(Value::String(token.to_string())),
            None => None,
        },
        _ => None,
    }
}

/// The default a description states, as written (read as ASCII), and whether it was quoted.
fn stated_default(desc: &str) -> Option<(String, bool)> {
    static DEFAULT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"(?i)(?:默认值?|缺省值?|\bdefaults?(?:\s+(?:is|to|value))?)\s*[:：]?\s*(?:为|是)?\s*(?:"([^"]*)"|“([^”]*)”|'([^']*)'|「([^」]*)」|([^\s，,。;；()（）"'”]+))"#,
        )
        .expect("regex")
    });
    let desc = ascii_punctuation(desc);
    let cap = DEFAULT.captures(&desc)?;
    let quoted_text = (1..=4).find_map(|i| cap.get(i)).map(|m| m.as_str().to_string());
    match quoted_text {
        Some(q) => Some((q, true)),
        None => Some((cap.get(5).map_or("", |m| m.as_str()).trim_end_matches(['.', '、']).to_string(), false)),
    }
}

const NUM: &str = r"(-?\d+(?:\.\d+)?)";

/// The bounds a description states: `范围1-50`, `范围值：0-1`, `取值范围[1,20]`, `取值1-4`,
/// `Range: 1-12`, `Range value: 2-100`, a bare `1-4` clause or one after a colon
/// (`生成图片数量：1-6`), `最多4` / `at most 4` (maximum), `至少1` / `at least 1` (minimum).
pub fn range_in_prose(desc: &str) -> (Option<f64>, Option<f64>) {
    static RANGE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"(?i)(?:取值范围|范围值?|取值|\brange(?:\s+values?)?\b|\bbetween\b)\s*[:：]?\s*(?:为|是)?\s*[\[(（【]?\s*{NUM}\s*(?:-|~|～|–|到|至|,|，|\band\b)\s*{NUM}"
        ))
        .expect("regex")
    });
    static BARE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"^(?:\s*|.*[:：]\s*)(?:取值)?\s*{NUM}\s*[-~～–]\s*{NUM}\s*$")).expect("regex"));
    static MAX: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"(?i)(?:最多|最大|不超过|at most|up to|maximum(?: of)?)\s*[:：]?\s*{NUM}")).expect("regex"));
    static MIN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"(?i)(?:至少|最少|最小|at least|minimum(?: of)?)\s*[:：]?\s*{NUM}")).expect("regex"));
    let desc = ascii_punctuation(desc);
    let num = |s: &str| s.parse::<f64>().ok();
    if let Some(c) = RANGE.captures(&desc) {
        return (num(&c[1]), num(&c[2]));
    }
    for clause in desc.split(['，', ',', '。', ';', '；', '(', ')', '（', '）']) {
        let clause = clause.trim().trim_end_matches('.');
        if let Some(c) = BARE.captures(clause) {
            return (num(&c[1]), num(&c[2]));
        }
    }
    let max = MAX.captures(&desc).and_then(|c| num(&c[1]));
    let min = MIN.captures(&desc).and_then(|c| num(&c[1]));
    (min, max)
}

/// The words that introduce a list of allowed values: `枚举值：`, `可选值`, `支持：`,
/// `enumerated values:`, `allowed values:`, `one of`, `Supported output formats:`.
static ENUM_INTRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:枚举值|枚举|可选值|可选项|取值有|取值为|支持的值|支持|(?:\benumerated|\benum|\ballowed|\bpossible|\bvalid|\bavailable|\baccepted)\s+values?|\benumeration|\boptions|\bone\s+of|\bsupported\b[\w ]{0,40}?)\s*(?:为|是|有|包括)?\s*[:：]\s*",
    )
    .expect("regex")
});

/// A bracketed list where a range would be (`范围[16:9,9:16,1:1]`, `范围值[720p，1080p]`):
/// for a string, its allowed values.
static BRACKETED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:取值范围|范围值?|\brange(?:\s+values?)?)\s*[:：]?\s*[\[【]([^\]】]*)[\]】]").expect("regex"));

/// Two or more quoted values after a colon, to the end of the description
/// (`图片输出格式："jpeg"，"png"`).
static QUOTED_LIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"[:：]\s*((?:(?:"[^"]+"|“[^”]+”|'[^']+')\s*[,，、]\s*)+(?:"[^"]+"|“[^”]+”|'[^']+'))\s*[。.]?\s*$"#).expect("regex")
});

/// Words that end a list of values: the next clause has begun.
static LIST_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)默认|缺省|范围|取值|\bdefault|\brange\b|\bmust\b|\bonly\b").expect("regex"));

/// The allowed values a description lists for a string, integer or number schema:
/// `枚举值：5、10`, `枚举值：16：9、9：16、auto` (read as `16:9`), `Enumerated values: 'none',
/// 'regular', 'high'`, `Supported output image formats: jpeg, png`, `范围[720p，1080p]`,
/// `："jpeg"，"png"`. Answers `None` unless every item is a plausible value (no prose, no
/// spaces unless quoted, at least two, no repeats, each of the schema's type).
pub fn enum_in_prose(desc: &str, schema: &Map<String, Value>) -> Option<Vec<Value>> {
    let t = schema_type(schema);
    if !matches!(t, "string" | "integer" | "number") {
        return None;
    }
    let text = ascii_punctuation(desc);
    let list = if let Some(m) = ENUM_INTRO.find(&text) {
        list_items(&text[m.end()..], None)
    } else if let Some(c) = BRACKETED.captures(&text).filter(|_| t == "string") {
        list_items(&c[1], Some(']'))
    } else if let Some(c) = QUOTED_LIST.captures(&text) {
        list_items(&c[1], None)
    } else {
        return None;
    }?;
    // "Default: "jpeg" Supported: default, JPEG, png": `default` names no value but the
    // stated default, and a value the default spells in another case is the default's.
    let list: Vec<String> = match stated_default(desc) {
        Some((stated, _)) => list
            .into_iter()
            .filter(|item| !item.eq_ignore_ascii_case("default"))
            .map(|item| if item.eq_ignore_ascii_case(&stated) { stated.clone() } else { item })
            .collect(),
        None => list,
    };
    if list.len() < 2 || (1..list.len()).any(|i| list[..i].contains(&list[i])) {
        return None;
    }
    list.into_iter()
        .map(|item| match t {
            "integer" => item.parse::<i64>().ok().map(Value::from),
            "number" => item.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number),
            _ => Some(Value::String(item)),
        })
        .collect()
}

/// The items of a list of values up to where the list ends: a closing bracket, the end of
/// a sentence, or an item that is prose (ideographs, or words such as `Default`).
fn list_items(text: &str, close: Option<char>) -> Option<Vec<String>> {
    let text = close.map_or(text, |c| text.split(c).next().unwrap_or(text));
    let mut items = Vec::new();
    for raw in text.split([',', '，', '、', '|', ';', '；']) {
        let raw = raw.trim();
        let (raw, sentence_ends) = match raw.find(". ").or_else(|| raw.strip_suffix('.').map(str::len)) {
            Some(i) => (&raw[..i], true),
            None => (raw, false),
        };
        let raw = raw.trim().trim_end_matches(['。', '等']).trim();
        let raw = raw.strip_prefix("or ").or_else(|| raw.strip_prefix("and ")).or_else(|| raw.strip_prefix('或')).unwrap_or(raw).trim();
        let quoted = ["\"\"", "''", "“”", "``"].iter().find_map(|q| {
            let (open, end) = (q.chars().next()?, q.chars().nth(1)?);
            raw.strip_prefix(open).and_then(|r| r.strip_suffix(end))
        });
        let item = match quoted {
            Some(q) if !q.is_empty() && !has_cjk(q) => q.to_string(),
            Some(_) => break,
            // A lone `default` is an item (the stated default, dropped by the caller).
            None if raw.is_empty()
                || has_cjk(raw)
                || (LIST_END.is_match(raw) && !raw.eq_ignore_ascii_case("default"))
                || raw.contains(char::is_whitespace) =>
            {
                break;
            }
            None => raw.to_string(),
        };
        if !item.chars().all(|c| c.is_ascii_graphic() || c == ' ') || item.len() > 48 {
            return None;
        }
        items.push(item);
        if sentence_ends {
            break;
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(t: &str) -> Map<String, Value> {
        json!({"type": t}).as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn enums_in_the_wordings_relays_use() {
        for (desc, t, expected) in [
            ("尺寸，枚举值：16：9、9：16、auto，默认值： \"auto\"", "string", Some(json!(["16:9", "9:16", "auto"]))),
            ("生成视频时长，枚举值：5、10", "string", Some(json!(["5", "10"]))),
            ("生成视频时长，枚举值：5、10", "integer", Some(json!([5, 10]))),
            ("视频比例，枚举值：16：9，9：16，1：1", "string", Some(json!(["16:9", "9:16", "1:1"]))),
            (
                "Image aspect ratio, enumerated values: 1:1, 16:9, 9:16, 3:4, 4:3",
                "string",
                Some(json!(["1:1", "16:9", "9:16", "3:4", "4:3"])),
            ),
            ("Resolution: Enumerated values: \"1K\", \"2K\"", "string", Some(json!(["1K", "2K"]))),
            ("The acceleration level. Enumerated values: 'none', 'regular', 'high'", "string", Some(json!(["none", "regular", "high"]))),
            ("输出图片格式，支持：jpeg、png", "string", Some(json!(["jpeg", "png"]))),
            ("Supported output image formats: jpeg, png", "string", Some(json!(["jpeg", "png"]))),
            ("图片生成速度，枚举值：\"regular\"，\"none\"", "string", Some(json!(["regular", "none"]))),
            ("图片输出格式：\"jpeg\"，\"png\"", "string", Some(json!(["jpeg", "png"]))),
            ("宽高比。默认值：\"16:9\"，范围[16:9,9:16,1:1]", "string", Some(json!(["16:9", "9:16", "1:1"]))),
            ("分辨率默认值：\"720p\"  范围值[720p，1080p]", "string", Some(json!(["720p", "1080p"]))),
            ("Format: one of: png, jpeg. Default: png", "string", Some(json!(["png", "jpeg"]))),
            ("Format. Default value: \"jpeg\" Supported formats: default, JPEG, png", "string", Some(json!(["jpeg", "png"]))),
            ("Speed. Default: \"regular\" Supported: default, none, regular, high", "string", Some(json!(["none", "regular", "high"]))),
            ("Scheduler, one of: default, karras", "string", Some(json!(["default", "karras"]))),
            ("Size, enumerated values: square, square pro, landscape_4_3", "string", None),
            ("图片url，接受的文件类型：jpg、jpeg、png", "string", None),
            ("范围[1,20]", "number", None),
            ("枚举值：auto", "string", None),
            ("枚举值：a、a", "string", None),
            ("枚举值：5、ten", "integer", None),
            ("是否启用安全检测，默认true", "boolean", None),
            ("A prompt: describe the scene", "string", None),
        ] {
            assert_eq!(enum_in_prose(desc, &typed(t)).map(Value::Array), expected, "{desc} ({t})");
        }
    }

    #[test]
    fn ranges_and_defaults_in_full_width_and_other_wordings() {
        for (desc, expected) in [
            ("范围值：2-40", (Some(2.0), Some(40.0))),
            ("强度，范围值：0.01-1", (Some(0.01), Some(1.0))),
            ("Range value: 2-100", (Some(2.0), Some(100.0))),
            ("Number of images. Range: 1-4. Default: 1", (Some(1.0), Some(4.0))),
            ("生成图片数量：1-6", (Some(1.0), Some(6.0))),
            ("范围：１－５０", (Some(1.0), Some(50.0))),
            ("Prompt words", (None, None)),
        ] {
            assert_eq!(range_in_prose(desc), expected, "{desc}");
        }
        let with_enum = json!({"type": "string", "enum": ["16:9", "9:16", "auto"]});
        assert_eq!(default_in_prose("尺寸，默认值： \"auto\"", with_enum.as_object().unwrap()), Some(json!("auto")));
        assert_eq!(default_in_prose("宽高比，默认值：16：9", with_enum.as_object().unwrap()), Some(json!("16:9")));
        assert_eq!(default_in_prose("时长默认值：\"8s\"", &typed("string")), Some(json!("8s")));
        assert_eq!(default_in_prose("Enable security checks. Default value: true", &typed("boolean")), Some(json!(true)));
    }

    #[test]
    fn values_in_full_width_read_as_ascii_unless_they_are_text() {
        assert_eq!(ascii_value("16：9").as_deref(), Some("16:9"));
        assert_eq!(ascii_value("１０２４").as_deref(), Some("1024"));
        assert_eq!(ascii_value("写实，高清"), None);
        assert_eq!(ascii_value("16:9"), None);
        assert!(says_optional("可选。推理步数"));
        assert!(!says_optional("枚举值：a、b（可选值见下）必填"));
    }
}
