//! Reading babeltrace2's text output back into fields. `trace` runs the
//! babeltrace2 CLI with `--names=all --clock-seconds --no-delta`, which
//! prints every event on one line as `label = value` items (`timestamp`,
//! `trace:hostname`, `name`, `stream.packet.context`,
//! `stream.event.context`, `event.fields`, ...), values being structures
//! `{ a = 1, b = "x" }`, arrays `[ [0] = 1 ]`, quoted strings with
//! backslash escapes, parenthesized enumerations, or bare scalars. Each
//! value keeps its text, for people, and is parsed into JSON for `--json`
//! and for finding the crashing process's events.

use serde_json::{Map, Number, Value};

/// One labelled item of an event line.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub label: String,
    pub value: Value,
    /// The value as babeltrace2 printed it.
    pub text: String,
}

/// An event line's items, or `None` when the line is not one.
pub fn parse_line(line: &str) -> Option<Vec<Item>> {
    let mut parser = Parser {
        text: line.as_bytes(),
        at: 0,
    };
    let mut items = Vec::new();
    loop {
        let label = parser.label()?;
        let start = parser.at;
        let value = parser.value()?;
        let text = String::from_utf8_lossy(&parser.text[start..parser.at]).into_owned();
        items.push(Item { label, value, text });
        if parser.at >= parser.text.len() {
            return Some(items);
        }
        if !parser.eat(b", ") {
            return None;
        }
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn eat(&mut self, what: &[u8]) -> bool {
        if self.text[self.at..].starts_with(what) {
            self.at += what.len();
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// `label = ` (labels hold no `" = "`).
    fn label(&mut self) -> Option<String> {
        let rest = &self.text[self.at..];
        let end = rest.windows(3).position(|w| w == b" = ")?;
        let label = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 3;
        Some(label)
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'{' => self
                .compound(b'}')
                .map(|items| Value::Object(items.into_iter().collect::<Map<String, Value>>())),
            b'[' => self
                .compound(b']')
                .map(|items| Value::Array(items.into_iter().map(|(_, v)| v).collect())),
            b'"' => self.string().map(Value::String),
            b'(' => self.parenthesized().map(Value::String),
            _ => Some(self.scalar()),
        }
    }

    /// `{ a = v, b = v }` or `[ [0] = v ]`; `{ }` when empty.
    fn compound(&mut self, close: u8) -> Option<Vec<(String, Value)>> {
        self.at += 1;
        let mut items = Vec::new();
        if self.eat(&[b' ', close]) || self.eat(&[close]) {
            return Some(items);
        }
        if !self.eat(b" ") {
            return None;
        }
        loop {
            let label = self.label()?;
            let value = self.value()?;
            items.push((label, value));
            if self.eat(b", ") {
                continue;
            }
            if self.eat(&[b' ', close]) {
                return Some(items);
            }
            return None;
        }
    }

    fn string(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let byte = self.peek()?;
            self.at += 1;
            match byte {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    // babeltrace2 writes the other control bytes (DEL
                    // included) as three octal digits: `\177`.
                    let octal = self
                        .text
                        .get(self.at..self.at + 3)
                        .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)));
                    if let Some(digits) = octal {
                        let value = digits
                            .iter()
                            .fold(0u32, |value, d| value * 8 + u32::from(d - b'0'));
                        if let Ok(byte) = u8::try_from(value) {
                            out.push(byte);
                            self.at += 3;
                            continue;
                        }
                    }
                    let escaped = self.peek()?;
                    self.at += 1;
                    match escaped {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'v' => out.push(0x0b),
                        b'f' => out.push(0x0c),
                        b'a' => out.push(0x07),
                        b'b' => out.push(0x08),
                        b'0' => out.push(0),
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    /// An enumeration, kept as text: `( "LABEL" : container = 3 )`.
    fn parenthesized(&mut self) -> Option<String> {
        let start = self.at;
        let mut depth = 0usize;
        let mut in_string = false;
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'\\' if in_string => self.at += 1,
                b'"' => in_string = !in_string,
                b'(' if !in_string => depth += 1,
                b')' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(
                            String::from_utf8_lossy(&self.text[start..self.at]).into_owned(),
                        );
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// A number when it reads as one, else text; ends at `,`, ` }` or ` ]`.
    fn scalar(&mut self) -> Value {
        let start = self.at;
        while let Some(byte) = self.peek() {
            let rest = &self.text[self.at..];
            if byte == b',' || rest.starts_with(b" }") || rest.starts_with(b" ]") {
                break;
            }
            self.at += 1;
        }
        let text = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
        if let Ok(number) = text.parse::<i64>() {
            return Value::Number(number.into());
        }
        if let Ok(number) = text.parse::<u64>() {
            return Value::Number(number.into());
        }
        if !text.contains(':') {
            if let Some(number) = text.parse::<f64>().ok().and_then(Number::from_f64) {
                if text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e')
                {
                    return Value::Number(number);
                }
            }
        }
        Value::String(text)
    }
}

/// One event, as `trace` uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `SECONDS.NANOSECONDS` since the epoch, as babeltrace2 printed it.
    pub timestamp: String,
    pub name: String,
    pub items: Vec<Item>,
}

impl Event {
    pub fn parse(line: &str) -> Option<Event> {
        let items = parse_line(line)?;
        let find = |label: &str| {
            items
                .iter()
                .find(|i| i.label == label)
                .map(|i| i.text.clone())
        };
        Some(Event {
            timestamp: find("timestamp")?,
            name: find("name")?,
            items,
        })
    }

    pub fn item(&self, label: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.label == label)
    }

    /// A field of the event's context (`vpid`, `procname`, ...).
    pub fn context(&self, field: &str) -> Option<&Value> {
        self.item("stream.event.context")?.value.get(field)
    }

    /// Nanoseconds since the epoch.
    pub fn unix_ns(&self) -> Option<i128> {
        let (seconds, fraction) = self
            .timestamp
            .split_once('.')
            .unwrap_or((&self.timestamp, "0"));
        let seconds: i128 = seconds.parse().ok()?;
        let mut digits = fraction.to_string();
        digits.truncate(9);
        while digits.len() < 9 {
            digits.push('0');
        }
        Some(seconds * 1_000_000_000 + digits.parse::<i128>().ok()?)
    }

    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("timestamp".into(), Value::from(self.timestamp.clone()));
        if let Some(ns) = self.unix_ns() {
            object.insert("unix_ns".into(), Value::from(ns as i64));
        }
        object.insert("name".into(), Value::from(self.name.clone()));
        for item in &self.items {
            if item.label == "timestamp" || item.label == "name" {
                continue;
            }
            let key = match item.label.as_str() {
                "event.fields" => "fields".to_string(),
                "stream.event.context" => "context".to_string(),
                "stream.packet.context" => "packet_context".to_string(),
                "event.common_context" | "event.common-context" => "common_context".to_string(),
                "event.specific_context" | "event.specific-context" => {
                    "specific_context".to_string()
                }
                other => other.replace(':', "_"),
            };
            object.insert(key, item.value.clone());
        }
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"timestamp = 1795696784.033262782, trace:hostname = vm, name = lttng_coredump_test:step, stream.packet.context = { cpu_id = 1 }, stream.event.context = { vpid = 24441, procname = "crasher" }, event.fields = { seq = 0, tag = "ta\"g,} x", neg = -3, ratio = 0.5, list = [ [0] = 1, [1] = 2 ], empty = { }, kind = ( "A" : container = 3 ) }"#;

    #[test]
    fn escaped_strings_become_their_text_in_json_once() {
        // babeltrace2's escapes: \n and \" by name, DEL (and other control
        // bytes) in octal, a backslash doubled.
        let line =
            r#"timestamp = 1.5, name = e, event.fields = { s = "\177ELF\nline 2\\x\"", n = 1 }"#;
        let event = Event::parse(line).unwrap();
        let json = event.to_json();
        assert_eq!(json["fields"]["s"], "\u{7f}ELF\nline 2\\x\"");
        assert_eq!(json["fields"]["n"], 1);
        // The JSON text has one escape each, not a doubled backslash.
        let text = serde_json::to_string(&json["fields"]["s"]).unwrap();
        assert_eq!(text, "\"\u{7f}ELF\\nline 2\\\\x\\\"\"");
    }

    #[test]
    fn a_babeltrace2_line_reads_back() {
        let event = Event::parse(LINE).unwrap();
        assert_eq!(event.timestamp, "1795696784.033262782");
        assert_eq!(event.name, "lttng_coredump_test:step");
        assert_eq!(event.unix_ns(), Some(1_795_696_784_033_262_782));
        assert_eq!(event.context("vpid"), Some(&Value::from(24441)));
        assert_eq!(event.context("procname"), Some(&Value::from("crasher")));
        let json = event.to_json();
        assert_eq!(json["fields"]["tag"], "ta\"g,} x");
        assert_eq!(json["fields"]["seq"], 0);
        assert_eq!(json["fields"]["neg"], -3);
        assert_eq!(json["fields"]["ratio"], 0.5);
        assert_eq!(json["fields"]["list"], serde_json::json!([1, 2]));
        assert_eq!(json["fields"]["empty"], serde_json::json!({}));
        assert_eq!(json["fields"]["kind"], "( \"A\" : container = 3 )");
        assert_eq!(json["trace_hostname"], "vm");
        assert_eq!(json["packet_context"]["cpu_id"], 1);
        assert_eq!(
            event.item("event.fields").unwrap().text,
            r#"{ seq = 0, tag = "ta\"g,} x", neg = -3, ratio = 0.5, list = [ [0] = 1, [1] = 2 ], empty = { }, kind = ( "A" : container = 3 ) }"#
        );
    }

    #[test]
    fn other_lines_are_not_events() {
        assert!(Event::parse("").is_none());
        assert!(Event::parse("warning: something").is_none());
        assert!(Event::parse("timestamp = 1.0, name = { unterminated").is_none());
    }
}
