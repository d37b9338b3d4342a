//! How a [`Record`] is laid out in a session's Redis hash: field `r` holds the state and the
//! record's version, field `ids` the answered eventIds (`|id|id|`, which the commit script also
//! searches and appends to, so they are stored once and never sent whole on a warm webhook).
//!
//! `r` comes in three forms, told apart by its first byte, and every replica reads all three:
//! * **binary** (`0x00`, then the format number, then [`Record::version`] and the state's
//!   compact encoding; see [`switchboard_protocol::compact`]): the default, about a third of
//!   the JSON's size;
//! * **JSON** (`{`): what versions before the binary format wrote, with the eventIds inside as
//!   well (and what [`RecordFormat::Json`] still writes, for a rolling upgrade from them);
//! * **zlib** of either (`compress`), for memory-bound deployments.
//!
//! A rolling upgrade from a JSON-writing version: run the new version with
//! `redis_record_format = json` until no old replica is left, then switch to `binary` (the
//! default). New replicas read old records from the first moment; old replicas cannot read
//! binary ones.

use std::collections::VecDeque;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use switchboard_flow::SessionState;
use switchboard_protocol::compact::{Reader, Writer};

use crate::store::{EVENTS_KEPT, Record};

/// First byte of a binary record (JSON starts with `{`, zlib with `0x78`).
const BINARY: u8 = 0x00;
/// The binary layout's number, after [`BINARY`]. Bump it (and keep reading the old one) when
/// the layout changes.
const BINARY_V1: u8 = 1;

/// How records are written (every form is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordFormat {
    /// The compact binary layout: the default.
    #[default]
    Binary,
    /// JSON, as versions before the binary layout wrote it: for a rolling upgrade from them.
    Json,
}

impl RecordFormat {
    /// Reads `binary` or `json`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "binary" => Some(Self::Binary),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The `r` field of `record`.
pub(super) fn encode(record: &Record, format: RecordFormat, compress: bool) -> Vec<u8> {
    let bytes = match format {
        RecordFormat::Binary => {
            let mut out = Writer::with_capacity(320);
            out.u8(BINARY);
            out.u8(BINARY_V1);
            out.uint(record.version);
            record.state.write_compact(&mut out);
            out.into_bytes()
        }
        // Serializing a record cannot fail: strings, numbers, and maps with string keys.
        RecordFormat::Json => serde_json::to_vec(record).unwrap_or_default(),
    };
    if !compress {
        return bytes;
    }
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(&bytes);
    encoder.finish().unwrap_or(bytes)
}

/// Reads a stored record from its `r` field and, when it was read too, its `ids` field (which
/// wins over any eventIds inside `r`: the commit script keeps it).
pub(super) fn decode(r: &[u8], ids: Option<&[u8]>) -> Result<Record, String> {
    let mut record = match r.first() {
        Some(&BINARY) => decode_binary(r)?,
        Some(b'{') => serde_json::from_slice(r).map_err(|e| format!("bad JSON record: {e}"))?,
        Some(_) => {
            let mut inner = Vec::with_capacity(r.len() * 4);
            ZlibDecoder::new(r)
                .read_to_end(&mut inner)
                .map_err(|e| format!("neither a record nor zlib: {e}"))?;
            if inner.first() != Some(&BINARY) && inner.first() != Some(&b'{') {
                return Err("a compressed record holds neither JSON nor a binary record".into());
            }
            return decode(&inner, ids);
        }
        None => return Err("an empty record".into()),
    };
    if let Some(ids) = ids {
        record.events = parse_ids(ids);
    }
    Ok(record)
}

fn decode_binary(r: &[u8]) -> Result<Record, String> {
    let mut input = Reader::new(r);
    input.u8().map_err(|e| e.to_string())?;
    let format = input.u8().map_err(|e| e.to_string())?;
    if format != BINARY_V1 {
        return Err(format!(
            "binary record format {format}, which this version cannot read (it reads {BINARY_V1}); \
             upgrade this replica"
        ));
    }
    let version = input.uint().map_err(|e| e.to_string())?;
    let state = SessionState::read_compact(&mut input).map_err(|e| e.to_string())?;
    input.finish().map_err(|e| e.to_string())?;
    Ok(Record {
        state,
        version,
        events: VecDeque::new(),
    })
}

/// Appends the `ids` form of `events` to `out`: `|id|id|`. An id holding the separator cannot
/// be searched for and is left out (the record's version check still guards its event).
pub(super) fn push_ids<'a>(out: &mut String, events: impl IntoIterator<Item = &'a String>) {
    out.push('|');
    for id in events {
        if !id.is_empty() && !id.contains('|') {
            out.push_str(id);
            out.push('|');
        }
    }
}

/// The eventIds of an `ids` field, oldest first, at most [`EVENTS_KEPT`].
pub(super) fn parse_ids(ids: &[u8]) -> VecDeque<String> {
    let text = String::from_utf8_lossy(ids);
    let ids: Vec<&str> = text.split('|').filter(|id| !id.is_empty()).collect();
    let skip = ids.len().saturating_sub(EVENTS_KEPT);
    ids[skip..].iter().map(|&id| id.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids_field<'a>(events: impl IntoIterator<Item = &'a String>) -> String {
        let mut ids = String::new();
        push_ids(&mut ids, events);
        ids
    }

    fn record() -> Record {
        serde_json::from_value(serde_json::json!({
            "state": {
                "flow": "restaurant", "version": 4212925247u32, "node": "main",
                "awaiting": "input", "seq": 3, "invalid": 1, "no_input": 0, "attempts": 0,
                "vars": {"guests": "4"}, "path": ["main", "book", "main"], "menus": ["main"],
                "caller": "+6591110000", "called": "+6568888888", "digits": "4",
                "last_reply": {
                    "clientActionId": "restaurant:fb1c233f:main:3",
                    "callflow": [
                        {"action": "say", "params": {"text": "Sorry.", "voiceProfile": "en-US-BenjaminRUS"}},
                        {"action": "sayAndCapture", "params": {
                            "promptMessage": "Welcome to ABC Restaurant. To book a table press 1.",
                            "voiceProfile": "en-US-BenjaminRUS", "speed": 1.0,
                            "completeOnHash": false, "minDigits": 1, "maxDigits": 1,
                            "digitTimeout": 5000, "overallTimeout": 10000, "noOfTries": 1}}
                    ]
                }
            },
            "version": 7,
            "events": ["e1", "e2"]
        }))
        .expect("a record")
    }

    #[test]
    fn every_form_reads_back_to_the_same_record_and_the_same_answer() {
        let record = record();
        let ids = ids_field(&record.events);
        assert_eq!(ids, "|e1|e2|");
        for format in [RecordFormat::Binary, RecordFormat::Json] {
            for compress in [false, true] {
                let r = encode(&record, format, compress);
                let back = decode(&r, Some(ids.as_bytes())).unwrap();
                assert_eq!(back, record, "{format:?} compress={compress}");
                assert_eq!(back.last_answer(), record.last_answer());
            }
        }
        let binary = encode(&record, RecordFormat::Binary, false);
        let json = encode(&record, RecordFormat::Json, false);
        assert_eq!(binary[0], BINARY);
        assert_eq!(json[0], b'{');
        assert!(
            binary.len() * 2 < json.len(),
            "binary {} bytes, JSON {}",
            binary.len(),
            json.len()
        );
        // The eventIds live in `ids`; a binary `r` alone has none.
        assert!(decode(&binary, None).unwrap().events.is_empty());
        assert_eq!(decode(&json, None).unwrap().events, ["e1", "e2"]);
    }

    #[test]
    fn records_written_as_json_by_earlier_versions_are_read() {
        // What the JSON-writing versions stored (with the answer per event of the oldest).
        let old = serde_json::json!({
            "state": {
                "flow": "f", "version": 1, "node": "main", "awaiting": "input", "seq": 3,
                "invalid": 0, "no_input": 0, "attempts": 0, "vars": {},
                "path": ["main"], "menus": [], "caller": "+1", "called": "+2", "digits": "",
                "last_reply": {"clientActionId": "f:00000001:main:3", "callflow": [{"action": "hangup"}]}
            },
            "version": 7,
            "events": [["e1", "{\"callflow\":[]}"], ["e2", "{\"callflow\":[{\"action\":\"hangup\"}]}"]]
        });
        for compress in [false, true] {
            let mut bytes = serde_json::to_vec(&old).unwrap();
            if compress {
                let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
                encoder.write_all(&bytes).unwrap();
                bytes = encoder.finish().unwrap();
            }
            let record = decode(&bytes, Some(b"|e1|e2|")).expect("an old record reads");
            assert_eq!(record.version, 7);
            assert_eq!(record.events, ["e1", "e2"]);
            // Its duplicates are answered with the session's last answer, as sent.
            assert_eq!(
                record.answer_for("e2").as_deref(),
                Some(
                    &br#"{"clientActionId":"f:00000001:main:3","callflow":[{"action":"hangup"}]}"#
                        [..]
                )
            );
            // Written back in the new form, it reads the same.
            let rewritten = encode(&record, RecordFormat::Binary, false);
            assert_eq!(decode(&rewritten, Some(b"|e1|e2|")).unwrap(), record);
        }
    }

    #[test]
    fn damaged_or_unknown_records_are_errors() {
        let record = record();
        let good = encode(&record, RecordFormat::Binary, false);
        let mut newer = good.clone();
        newer[1] = 2;
        assert!(decode(&newer, None).unwrap_err().contains("format 2"));
        for cut in [0, 1, 2, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..cut], None).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer, None).is_err());
        assert!(decode(b"not a record", None).is_err());
    }

    #[test]
    fn ids_keep_the_latest_and_skip_what_cannot_be_searched() {
        let events: Vec<String> = (0..20).map(|i| format!("e{i}")).collect();
        let field = ids_field(&events);
        let parsed = parse_ids(field.as_bytes());
        assert_eq!(parsed.len(), EVENTS_KEPT);
        assert_eq!(parsed.front().map(String::as_str), Some("e4"));
        assert_eq!(ids_field(&["a|b".to_owned(), "c".to_owned()]), "|c|");
        assert!(parse_ids(b"|").is_empty());
    }
}
