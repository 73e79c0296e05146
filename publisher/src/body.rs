//! A reading's message body, serialised once per sample: requests close together share one
//! sample and differ only in `seq`, so the JSON is kept split around it and each publish only
//! writes its number in between.

use shared::reading::Reading;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// A reading's JSON, split where its `seq` goes.
#[derive(Debug)]
pub struct BodyTemplate {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl BodyTemplate {
    /// Serialises `reading` once; `seq` is left out.
    pub fn new(reading: &Reading) -> Result<Self, serde_json::Error> {
        let json = serde_json::to_vec(reading)?;
        // `seq` follows `schema_version` and `host` (the struct's field order); the expected
        // opening is rebuilt and compared, so a change of field order cannot go unnoticed.
        let mut opening = Vec::with_capacity(64 + reading.host.len());
        opening.extend_from_slice(b"{\"schema_version\":");
        serde_json::to_writer(&mut opening, &reading.schema_version)?;
        opening.extend_from_slice(b",\"host\":");
        serde_json::to_writer(&mut opening, &reading.host)?;
        opening.extend_from_slice(b",\"seq\":");
        let mut number = Vec::new();
        serde_json::to_writer(&mut number, &reading.seq)?;
        let after = opening.len() + number.len();
        let split = json.starts_with(&opening) && json.get(opening.len()..after) == Some(&number);
        if !split {
            // Not the expected shape: whole, with the seq written as it is.
            return Ok(Self {
                prefix: json,
                suffix: Vec::new(),
            });
        }
        Ok(Self {
            suffix: json[after..].to_vec(),
            prefix: opening,
        })
    }

    /// The body of this reading numbered `seq`.
    pub fn body(&self, seq: u64) -> Vec<u8> {
        if self.suffix.is_empty() {
            return self.prefix.clone();
        }
        let mut body = Vec::with_capacity(self.prefix.len() + 20 + self.suffix.len());
        body.extend_from_slice(&self.prefix);
        // Writing to a Vec cannot fail.
        let _ = write!(body, "{seq}");
        body.extend_from_slice(&self.suffix);
        body
    }
}

/// The template of the last sample submitted, recognised by its `Arc`.
#[derive(Default)]
pub struct BodyCache(Mutex<Option<(Arc<Reading>, Arc<BodyTemplate>)>>);

impl BodyCache {
    /// The template for `reading`, made on the first publish of that sample.
    pub fn template(&self, reading: &Arc<Reading>) -> Result<Arc<BodyTemplate>, serde_json::Error> {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((sample, template)) = cached.as_ref() {
            if Arc::ptr_eq(sample, reading) {
                return Ok(Arc::clone(template));
            }
        }
        let template = Arc::new(BodyTemplate::new(reading)?);
        *cached = Some((Arc::clone(reading), Arc::clone(&template)));
        Ok(template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Reading {
        serde_json::from_str(include_str!("../../consumer/tests/fixtures/reading.json"))
            .expect("fixture")
    }

    #[test]
    fn a_body_is_the_reading_with_its_seq_byte_for_byte() {
        let mut sample = reading();
        sample.host = "we\"ird \\ \"seq\":0, host".into();
        let template = BodyTemplate::new(&sample).expect("encodes");
        assert!(!template.suffix.is_empty(), "split around the seq");
        for seq in [0, 1, 9, 10, 4242, u64::MAX] {
            let mut numbered = sample.clone();
            numbered.seq = seq;
            let expected = serde_json::to_vec(&numbered).expect("encodes");
            assert_eq!(template.body(seq), expected, "seq {seq}");
        }
    }

    #[test]
    fn one_sample_is_serialised_once() {
        let cache = BodyCache::default();
        let sample = Arc::new(reading());
        let first = cache.template(&sample).expect("encodes");
        let again = cache.template(&sample).expect("encodes");
        assert!(Arc::ptr_eq(&first, &again));
        let next = Arc::new(reading());
        assert!(!Arc::ptr_eq(
            &first,
            &cache.template(&next).expect("encodes")
        ));
    }
}
