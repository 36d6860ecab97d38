//! A small binary encoding for rows spilled to disk while sorting: length-prefixed
//! strings and fixed-width integers, nothing self-describing (the reader is the writer).

/// Appends values to a record.
pub(crate) struct Encoder<'a>(pub &'a mut Vec<u8>);

impl Encoder<'_> {
    pub fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn str(&mut self, value: &str) {
        self.u64(value.len() as u64);
        self.0.extend_from_slice(value.as_bytes());
    }

    pub fn opt_str(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                self.u8(1);
                self.str(v);
            }
            None => self.u8(0),
        }
    }

    pub fn opt_i64(&mut self, value: Option<i64>) {
        match value {
            Some(v) => {
                self.u8(1);
                self.u64(v as u64);
            }
            None => self.u8(0),
        }
    }
}

/// Reads values back in the order they were appended.
pub(crate) struct Decoder<'a>(pub &'a [u8]);

const TRUNCATED: &str = "a spilled record is truncated";

impl<'a> Decoder<'a> {
    pub fn u8(&mut self) -> Result<u8, String> {
        let (&first, rest) = self.0.split_first().ok_or(TRUNCATED)?;
        self.0 = rest;
        Ok(first)
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        let (bytes, rest) = self.0.split_first_chunk::<8>().ok_or(TRUNCATED)?;
        self.0 = rest;
        Ok(u64::from_le_bytes(*bytes))
    }

    pub fn str(&mut self) -> Result<String, String> {
        let len = usize::try_from(self.u64()?).map_err(|_| TRUNCATED)?;
        if len > self.0.len() {
            return Err(TRUNCATED.into());
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a spilled string is not UTF-8".to_string())
    }

    pub fn opt_str(&mut self) -> Result<Option<String>, String> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.str()?),
        })
    }

    pub fn opt_i64(&mut self) -> Result<Option<i64>, String> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.u64()? as i64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_truncation_is_an_error() {
        let mut buf = Vec::new();
        let mut e = Encoder(&mut buf);
        e.str("héllo");
        e.opt_str(None);
        e.opt_str(Some(""));
        e.opt_i64(Some(-5));
        e.opt_i64(None);
        e.u8(7);
        let mut d = Decoder(&buf);
        assert_eq!(d.str().unwrap(), "héllo");
        assert_eq!(d.opt_str().unwrap(), None);
        assert_eq!(d.opt_str().unwrap(), Some(String::new()));
        assert_eq!(d.opt_i64().unwrap(), Some(-5));
        assert_eq!(d.opt_i64().unwrap(), None);
        assert_eq!(d.u8().unwrap(), 7);
        assert!(d.u8().is_err());
        let mut short = Decoder(&buf[..4]);
        assert!(short.str().is_err());
    }
}
