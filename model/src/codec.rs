//! Kafka's primitive types, read and written by hand for the messages that carry records
//! (`fetch_codec`, `produce_codec`): sizes as 4-byte or 2-byte signed lengths where -1 is null, or
//! in flexible versions as unsigned varints of one more; tagged fields after each flexible
//! structure.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Writes an array's or string's length, `None` for null, as [`Reader::nullable_size`] reads it:
/// one more as a varint in a flexible version, else a signed `width`-byte length where -1 is null.
pub fn put_size(buf: &mut BytesMut, len: Option<usize>, flexible: bool, width: usize) {
    let len = len.map_or(-1, |n| n as i64);
    if flexible {
        put_uvarint(buf, (len + 1) as u32);
    } else if width == 2 {
        buf.put_i16(len as i16);
    } else {
        buf.put_i32(len as i32);
    }
}

/// Writes a byte string: its length, then its bytes.
pub fn put_bytes(buf: &mut BytesMut, bytes: &[u8], flexible: bool) {
    put_size(buf, Some(bytes.len()), flexible, 4);
    buf.put_slice(bytes);
}

/// Reads a request's topics, each a name and its partitions, handing each partition to
/// `partition` with its topic's name and whether it opens the topic. A name equal to `known` is
/// shared, not copied. A topic that names no partitions leaves nothing behind, so its answer will
/// not list it.
pub fn read_topics(
    r: &mut Reader<'_>,
    flexible: bool,
    known: Option<&std::sync::Arc<str>>,
    mut partition: impl FnMut(&mut Reader<'_>, &std::sync::Arc<str>, bool) -> Result<(), String>,
) -> Result<(), String> {
    for _ in 0..r.len(flexible)? {
        let topic = r.str_reusing(flexible, known)?;
        for i in 0..r.len(flexible)? {
            partition(r, &topic, i == 0)?;
            r.tagged_fields(flexible)?;
        }
        r.tagged_fields(flexible)?;
    }
    Ok(())
}

/// Writes a response's topics as its request grouped them: a topic starts at the first of `items`
/// and at each that `opens` one, is named by `topic`, and holds its items, each written by `item`
/// (given its index).
pub fn write_topics<T>(
    buf: &mut BytesMut,
    items: &[T],
    flexible: bool,
    opens: impl Fn(&T) -> bool,
    topic: impl Fn(&T) -> &str,
    mut item: impl FnMut(&mut BytesMut, usize),
) {
    let run_end =
        |start: usize| start + 1 + items[start + 1..].iter().take_while(|i| !opens(i)).count();
    let mut topics = 0;
    let mut start = 0;
    while start < items.len() {
        topics += 1;
        start = run_end(start);
    }
    put_len(buf, topics, flexible);
    let mut start = 0;
    while start < items.len() {
        let end = run_end(start);
        put_str(buf, topic(&items[start]), flexible);
        put_len(buf, end - start, flexible);
        for i in start..end {
            item(buf, i);
        }
        if flexible {
            buf.put_u8(0); // the topic's tagged fields
        }
        start = end;
    }
}

pub fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes an array's length.
pub fn put_len(buf: &mut BytesMut, len: usize, flexible: bool) {
    put_size(buf, Some(len), flexible, 4);
}

/// Writes a string: its length, then its bytes.
pub fn put_str(buf: &mut BytesMut, s: &str, flexible: bool) {
    put_size(buf, Some(s.len()), flexible, 2);
    buf.put_slice(s.as_bytes());
}

/// Writes a null string.
pub fn put_null_str(buf: &mut BytesMut, flexible: bool) {
    put_size(buf, None, flexible, 2);
}

/// Reads from a frame, refusing to read past its end.
pub struct Reader<'a>(pub &'a mut Bytes);

#[cold]
fn ends_early(wanted: usize, left: usize) -> String {
    format!("message ends early: {wanted} bytes wanted, {left} left")
}

impl Reader<'_> {
    #[inline]
    pub fn need(&self, n: usize) -> Result<(), String> {
        match self.0.remaining() {
            left if left < n => Err(ends_early(n, left)),
            _ => Ok(()),
        }
    }

    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), String> {
        self.need(n)?;
        self.0.advance(n);
        Ok(())
    }

    #[inline]
    pub fn i8(&mut self) -> Result<i8, String> {
        self.need(1)?;
        Ok(self.0.get_i8())
    }

    #[inline]
    pub fn i16(&mut self) -> Result<i16, String> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }

    #[inline]
    pub fn i32(&mut self) -> Result<i32, String> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }

    #[inline]
    pub fn i64(&mut self) -> Result<i64, String> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }

    #[inline]
    pub fn uvarint(&mut self) -> Result<u32, String> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            self.need(1)?;
            let byte = self.0.get_u8();
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("message holds a varint longer than 5 bytes".into())
    }

    /// An array's or string's length, `None` for null: one less than a varint in a flexible
    /// version, else a signed `width`-byte length where -1 is null.
    #[inline]
    pub fn nullable_size(&mut self, flexible: bool, width: usize) -> Result<Option<usize>, String> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if width == 2 {
            i64::from(self.i16()?)
        } else {
            i64::from(self.i32()?)
        };
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(format!("message holds a length of {n}")),
            n => Ok(Some(n as usize)),
        }
    }

    #[inline]
    pub fn nullable_len(&mut self, flexible: bool) -> Result<Option<usize>, String> {
        self.nullable_size(flexible, 4)
    }

    #[inline]
    pub fn len(&mut self, flexible: bool) -> Result<usize, String> {
        self.nullable_len(flexible)?
            .ok_or_else(|| "message holds a null array".to_owned())
    }

    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, String> {
        match self.nullable_size(flexible, 4)? {
            None => Ok(None),
            Some(n) => {
                self.need(n)?;
                Ok(Some(self.0.split_to(n)))
            }
        }
    }

    /// A string, checked to be UTF-8 and left in place: the caller advances past it.
    pub fn peek_str(&mut self, flexible: bool) -> Result<&str, String> {
        let n = self
            .nullable_size(flexible, 2)?
            .ok_or_else(|| "message holds a null string".to_owned())?;
        self.need(n)?;
        std::str::from_utf8(&self.0[..n]).map_err(|e| format!("message holds a bad string: {e}"))
    }

    /// A string as shared text: `known` itself when it holds the same text, as the topic of the
    /// connection's last request usually does, else a new copy.
    pub fn str_reusing(
        &mut self,
        flexible: bool,
        known: Option<&std::sync::Arc<str>>,
    ) -> Result<std::sync::Arc<str>, String> {
        let s = self.peek_str(flexible)?;
        let (s, n) = match known {
            Some(k) if **k == *s => (k.clone(), s.len()),
            _ => (std::sync::Arc::from(s), s.len()),
        };
        self.0.advance(n);
        Ok(s)
    }

    /// Checks a string and passes over it.
    pub fn skip_str(&mut self, flexible: bool) -> Result<(), String> {
        let n = self.peek_str(flexible)?.len();
        self.0.advance(n);
        Ok(())
    }

    /// Reads a response up to its first topic's first partition, the one a request naming a single
    /// partition asked for; false when the response names none.
    pub fn enter_first_partition(&mut self, flexible: bool) -> Result<bool, String> {
        if self.len(flexible)? == 0 {
            return Ok(false);
        }
        self.skip_str(flexible)?;
        Ok(self.len(flexible)? > 0)
    }

    /// Skips a flexible structure's tagged fields.
    #[inline]
    pub fn tagged_fields(&mut self, flexible: bool) -> Result<(), String> {
        if flexible {
            for _ in 0..self.uvarint()? {
                self.uvarint()?;
                let size = self.uvarint()? as usize;
                self.skip(size)?;
            }
        }
        Ok(())
    }
}
