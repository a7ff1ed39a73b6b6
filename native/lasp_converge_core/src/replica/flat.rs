//! A keyed replica's binary, walked as bytes.
//!
//! [`Encoded`] is a gset's or gcounter's binary (see the parent module)
//! with a table of where each entry starts and where its primary key ends.
//! [`plan`] merges an incoming binary of the same layout against it without
//! decoding the entries the two share: it finds the first byte where the
//! rest of the incoming body differs from the rest of the resident one,
//! takes every resident entry wholly before it as matched (keys are
//! self-delimiting, so equal bytes are equal entries), and reads only the
//! entry at the difference. A receiver that holds most of what it receives
//! pays about a `memcmp` of the two binaries instead of a key comparison
//! per entry.

use std::cmp::Ordering;

use super::{Act, First, In, GCOUNTER, GSET, MAGIC, VERSION};
use crate::error::{BadCrdt, Result};
use crate::term::Atom;
use crate::wire;

/// Header bytes before a keyed body: magic, version, layout.
pub(super) const HEADER: usize = 5;
/// The count before the entries.
const COUNT: usize = 4;

/// A keyed replica's binary and its entry table.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub(super) bytes: Vec<u8>,
    /// Per entry: its start in `bytes` and the length of its primary key;
    /// one more start at the end (the binary's length).
    pub(super) starts: Vec<u32>,
    pub(super) plens: Vec<u32>,
}

impl Encoded {
    /// The binary (as [`super::Replica::to_binary`] writes it).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Start a binary of `layout` with `n` entries.
    pub(super) fn start(layout: u8, n: usize, bytes_hint: usize) -> Self {
        let mut bytes = Vec::with_capacity(HEADER + COUNT + bytes_hint);
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.push(layout);
        bytes.extend_from_slice(&(n as u32).to_be_bytes());
        Encoded {
            bytes,
            starts: Vec::with_capacity(n + 1),
            plens: Vec::with_capacity(n),
        }
    }

    /// Append one entry: its primary key, exact part and tail (a count).
    pub(super) fn push(&mut self, primary: &[u8], exact: &[u8], tail: &[u8]) {
        self.starts.push(self.bytes.len() as u32);
        self.plens.push(primary.len() as u32);
        self.bytes.extend_from_slice(primary);
        self.bytes.extend_from_slice(exact);
        self.bytes.extend_from_slice(tail);
    }

    pub(super) fn finish(mut self) -> Self {
        self.starts.push(self.bytes.len() as u32);
        self
    }

    fn len(&self) -> usize {
        self.plens.len()
    }

    fn entry(&self, i: usize) -> (&[u8], &[u8], &[u8], usize) {
        let (s, e) = (self.starts[i] as usize, self.starts[i + 1] as usize);
        let p = s + self.plens[i] as usize;
        let tail = if self.bytes[4] == GCOUNTER { 8 } else { 0 };
        (
            &self.bytes[s..p],
            &self.bytes[p..e - tail],
            &self.bytes[e - tail..e],
            s,
        )
    }
}

/// The length of the common prefix of two byte strings.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or_default());
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// What merging `bytes` into the state `enc` encodes does: the incoming
/// entries (borrowed from `bytes`) and, per entry the merge reads, its
/// action, as [`super::plan_set`] and [`super::plan_counter`] give them for
/// `merge(Resident, Incoming)`. Checks the incoming binary's structure:
/// layout, count, every entry a key (and a count), keys strictly ascending,
/// nothing left over. Entries the plan names are to be decoded by the
/// caller (which validates them fully); the others are bytes of `enc`.
/// Each comes with the index of the resident entry it goes before
/// (`Insert`) or meets.
///
/// With a `budget`, gives up with [`BadCrdt::Yield`] once more entries than
/// that differ from the resident ones (each is read key by key).
pub(super) fn plan<'a>(
    enc: &Encoded,
    bytes: &'a [u8],
    budget: Option<usize>,
) -> Result<Vec<(In<'a>, Act, usize)>> {
    let bad = BadCrdt::BadBinary;
    let layout = enc.bytes[4];
    if bytes.get(..HEADER) != enc.bytes.get(..HEADER) {
        return Err(bad(Atom::Malformed));
    }
    let tail_len = if layout == GSET { 0 } else { 8 };
    let n = bytes
        .get(HEADER..HEADER + COUNT)
        .ok_or(bad(Atom::Truncated))?;
    let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
    let first = HEADER + COUNT;
    if n > (bytes.len() - first) / 2 {
        return Err(bad(Atom::Truncated));
    }
    let mut out = Vec::new();
    let mut q = first; // next incoming entry
    let mut e = 0; // next resident entry
    let mut seen = 0; // incoming entries read
    let mut cur = First::Resident;
    let mut prev: Option<&[u8]> = None; // the last incoming primary read
    let mut prev_matched = false; // ... and whether it was resident bytes
    let mut seen_slow = 0; // entries read key by key
    while seen < n {
        // Every resident entry wholly inside the common prefix is matched.
        if e < enc.len() {
            let at = enc.starts[e] as usize;
            let same = common_prefix(&bytes[q..], &enc.bytes[at..]);
            let end = at + same;
            // Entries e..k end at or before `end`.
            let k = enc.starts[e + 1..].partition_point(|&s| (s as usize) <= end) + e;
            let k = k.min(e + (n - seen));
            if k > e {
                q += enc.starts[k] as usize - at;
                seen += k - e;
                e = k;
                prev_matched = true;
                continue;
            }
        }
        // Read the entry at `q`.
        if budget.is_some_and(|b| seen_slow >= b) {
            return Err(BadCrdt::Yield);
        }
        seen_slow += 1;
        let rest = &bytes[q..];
        let (plen, used) = wire::key_len(rest).map_err(|err| {
            bad(match err {
                wire::KeyError::Truncated => Atom::Truncated,
                _ => Atom::Malformed,
            })
        })?;
        let t = rest
            .get(used..used + tail_len)
            .ok_or(bad(Atom::Truncated))?;
        let x = In {
            key: &rest[..plen],
            exact: &rest[plen..used],
            count: if tail_len == 8 {
                let mut c = [0u8; 8];
                c.copy_from_slice(t);
                i64::from_be_bytes(c)
            } else {
                0
            },
        };
        // After matched resident bytes the previous key is the resident
        // entry before `e`.
        let before = if prev_matched && e > 0 {
            Some(enc.entry(e - 1).0)
        } else {
            prev
        };
        if before.is_some_and(|p| p >= x.key) {
            return Err(bad(Atom::Unsorted));
        }
        q += used + tail_len;
        seen += 1;
        prev = Some(x.key);
        prev_matched = false;
        // Place it among the resident entries.
        loop {
            if e == enc.len() {
                out.push((x, Act::Insert, e));
                cur = First::Incoming;
                break;
            }
            let (rk, rexact, rtail, _) = enc.entry(e);
            match rk.cmp(x.key) {
                Ordering::Less => {
                    cur = First::Resident;
                    e += 1;
                }
                Ordering::Greater => {
                    out.push((x, Act::Insert, e));
                    cur = First::Incoming;
                    break;
                }
                Ordering::Equal => {
                    let other_term = rexact != x.exact;
                    let act = if layout == GSET {
                        // ordsets:union keeps the current first list's term.
                        other_term.then_some(if cur == First::Incoming {
                            Act::Replace
                        } else {
                            Act::Check
                        })
                    } else {
                        // orddict:merge keeps the resident key; the larger
                        // count wins.
                        let mut c = [0u8; 8];
                        c.copy_from_slice(rtail);
                        if x.count > i64::from_be_bytes(c) {
                            Some(Act::Replace)
                        } else {
                            other_term.then_some(Act::Check)
                        }
                    };
                    if let Some(a) = act {
                        out.push((x, a, e));
                    }
                    e += 1;
                    break;
                }
            }
        }
    }
    if q != bytes.len() {
        return Err(bad(Atom::Malformed));
    }
    Ok(out)
}

/// One entry of a keyed state as it is now, by its bytes: what a binary
/// written before a small change needs to become the state's again.
#[derive(Debug, Clone)]
pub struct Patch {
    pub(super) key: Box<[u8]>,
    pub(super) exact: Box<[u8]>,
    pub(super) count: i64,
}

impl Encoded {
    /// The bytes of the binary's entries, from the first.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// This binary with `patches` written in: each replaces the entry of
    /// its key, or goes in at its place. One copy of the unchanged runs and
    /// a binary search per patch; the last patch of a key wins.
    pub fn patched(&self, patches: &[Patch]) -> Encoded {
        let mut ps: Vec<&Patch> = patches.iter().collect();
        // Stable: equal keys keep their order, the last one is kept.
        ps.sort_by(|a, b| a.key.cmp(&b.key));
        let mut last: Vec<&Patch> = Vec::with_capacity(ps.len());
        for p in ps {
            match last.last_mut() {
                Some(q) if q.key == p.key => *q = p,
                _ => last.push(p),
            }
        }
        let writes: Vec<(In, Act, usize)> = last
            .iter()
            .map(|p| {
                let at = self.find(&p.key);
                let x = In {
                    key: &p.key,
                    exact: &p.exact,
                    count: p.count,
                };
                match at {
                    Ok(i) => (x, Act::Replace, i),
                    Err(i) => (x, Act::Insert, i),
                }
            })
            .collect();
        self.splice_with(&writes, true)
    }

    /// The index of the entry with primary key `key`, or where it goes.
    fn find(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.entry(mid).0.cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The binary of the state after `writes` (in key order, each with the
    /// index [`plan`] gave it) are applied to the state this is the binary
    /// of: one copy of the unchanged runs, no key compared. A gset's
    /// `Replace` takes the incoming entry; a gcounter's keeps the resident
    /// key's exact part with the incoming (larger) count, as the merge
    /// writes them.
    pub(super) fn splice(&self, writes: &[(In, Act, usize)]) -> Encoded {
        self.splice_with(writes, false)
    }

    /// [`Encoded::splice`]; with `as_given`, a `Replace` writes the entry
    /// exactly as given (a [`Patch`] is the entry as it is now).
    fn splice_with(&self, writes: &[(In, Act, usize)], as_given: bool) -> Encoded {
        let layout = self.bytes[4];
        let inserts = writes.iter().filter(|w| w.1 == Act::Insert).count();
        let extra: usize = writes
            .iter()
            .map(|(x, _, _)| x.key.len() + x.exact.len() + 8)
            .sum();
        let mut out = Encoded::start(layout, self.len() + inserts, self.bytes.len() + extra);
        out.starts.clear();
        out.plens.clear();
        out.starts.reserve(self.len() + inserts + 1);
        out.plens.reserve(self.len() + inserts);
        let mut c = 0; // next resident entry to copy
        let copy = |out: &mut Encoded, from: usize, to: usize| {
            if from >= to {
                return;
            }
            let (s0, s1) = (self.starts[from] as usize, self.starts[to] as usize);
            let shift = out.bytes.len() as i64 - s0 as i64;
            out.bytes.extend_from_slice(&self.bytes[s0..s1]);
            out.starts.extend(
                self.starts[from..to]
                    .iter()
                    .map(|&s| (s as i64 + shift) as u32),
            );
            out.plens.extend_from_slice(&self.plens[from..to]);
        };
        for (x, act, at) in writes {
            copy(&mut out, c, *at);
            c = *at;
            let count = x.count.to_be_bytes();
            let tail: &[u8] = if layout == GSET { &[] } else { &count };
            match act {
                Act::Insert => out.push(x.key, x.exact, tail),
                Act::Replace if layout == GSET || as_given => {
                    out.push(x.key, x.exact, tail);
                    c += 1;
                }
                _ => {
                    let (_, rexact, _, _) = self.entry(c);
                    out.push(x.key, rexact, tail);
                    c += 1;
                }
            }
        }
        copy(&mut out, c, self.len());
        out.finish()
    }
}

#[cfg(test)]
mod test {
    use super::common_prefix;

    #[test]
    fn common_prefix_test() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).collect();
            for i in 0..=n {
                let mut b = a.clone();
                if i < n {
                    b[i] ^= 0x40;
                }
                assert_eq!(common_prefix(&a, &b), i);
                assert_eq!(common_prefix(&a[..i], &a), i);
            }
        }
    }
}
