//! Test support for every module of the crate: an Erlang-syntax reader of
//! [`OwnedTerm`](crate::owned::OwnedTerm)s, the mutation context [`Cx`],
//! encode/decode shorthands and a deterministic generator.

use crate::decode::{Decoder, Limits};
use crate::error::Result;
use crate::lattice::{Lattice, MutateCx};
use crate::term::{Builder, Term};

/// The test term is the crate's [`OwnedTerm`] (it has floats, so `==` and
/// `=:=` differ), under a short name.
pub use crate::owned::{OwnedBuilder as TB, OwnedTerm as TT};

/// Read an Erlang term: integers, floats, atoms (bare or quoted),
/// `<<"bin">>`, tuples, lists and `[H | T]`.
pub fn t(s: &str) -> TT {
    let mut p = P {
        s: s.as_bytes(),
        i: 0,
    };
    let v = p.term();
    p.ws();
    assert_eq!(p.i, p.s.len(), "trailing input in {s}");
    v
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn term(&mut self) -> TT {
        self.ws();
        let c = self.s[self.i];
        match c {
            b'{' => {
                self.i += 1;
                let mut v = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        v.push(self.term());
                        if self.eat(b'}') {
                            break;
                        }
                        assert!(self.eat(b','));
                    }
                }
                TT::tuple(v)
            }
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                let mut tail = TT::Nil;
                if !self.eat(b']') {
                    loop {
                        v.push(self.term());
                        if self.eat(b']') {
                            break;
                        }
                        if self.eat(b'|') {
                            tail = self.term();
                            assert!(self.eat(b']'));
                            break;
                        }
                        assert!(self.eat(b','));
                    }
                }
                if v.is_empty() {
                    tail
                } else {
                    TT::list_with_tail(v, tail)
                }
            }
            b'<' => {
                assert!(self.s[self.i..].starts_with(b"<<\""));
                self.i += 3;
                let st = self.i;
                while self.s[self.i] != b'"' {
                    self.i += 1;
                }
                let b = self.s[st..self.i].to_vec();
                self.i += 1;
                assert!(self.s[self.i..].starts_with(b">>"));
                self.i += 2;
                TT::bin(&b)
            }
            b'\'' => {
                self.i += 1;
                let st = self.i;
                while self.s[self.i] != b'\'' {
                    self.i += 1;
                }
                let a = std::str::from_utf8(&self.s[st..self.i])
                    .unwrap()
                    .to_string();
                self.i += 1;
                TT::atom(&a)
            }
            b'-' | b'0'..=b'9' => {
                let st = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit()
                        || self.s[self.i] == b'.'
                        || self.s[self.i] == b'e')
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[st..self.i]).unwrap();
                if n.contains('.') {
                    TT::float(n.parse().unwrap())
                } else {
                    TT::int(n.parse::<i64>().unwrap())
                }
            }
            _ => {
                let st = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric()
                        || self.s[self.i] == b'_'
                        || self.s[self.i] == b'@')
                {
                    self.i += 1;
                }
                assert!(self.i > st, "bad term at {}", self.i);
                let a = std::str::from_utf8(&self.s[st..self.i])
                    .unwrap()
                    .to_string();
                TT::atom(&a)
            }
        }
    }
}

/// A mutation context over [`TB`]. Its tokens count up: the n-th token a
/// context draws is the one-byte binary `<<n>>`, so tokens are distinct and
/// a test can name them; two fresh contexts draw the same tokens.
#[derive(Debug, Default)]
pub struct Cx(pub u8);

impl MutateCx<TT> for Cx {
    type B = TB;
    fn builder(&self) -> &TB {
        &TB
    }
    fn token(&mut self) -> TT {
        self.0 = self.0.wrapping_add(1);
        TB.binary(&[self.0])
    }
}

/// Decode a payload written in Erlang syntax.
pub fn dec<L: Lattice<TT>>(s: &str) -> Result<L> {
    L::decode(&t(s), &mut Decoder::new(Limits::dirty()))
}

/// Encode a state.
pub fn enc<L: Lattice<TT>>(l: &L) -> TT {
    l.encode(&TB)
}

/// `merge(A, B)` as a payload term.
pub fn merged<L: Lattice<TT>>(a: &L, b: &L) -> Result<TT> {
    Ok(enc(&a.merge(b)?.into_state(a, b)))
}

/// Assert two terms are identical, printing both otherwise.
#[track_caller]
pub fn same(x: &TT, y: &TT) {
    assert!(x.identical(y), "\n  left: {x:?}\n right: {y:?}");
}

/// A tiny deterministic generator for randomized tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A `state_gset` of up to `max` elements drawn by `elem`, `==`
/// duplicates dropped, in term order.
pub fn gset_of(r: &mut Rng, max: u64, elem: fn(&mut Rng) -> TT) -> TT {
    let mut es: Vec<TT> = Vec::new();
    for _ in 0..r.next(max) {
        let e = elem(r);
        if !es.iter().any(|x| x.equal(&e)) {
            es.push(e);
        }
    }
    es.sort_by(|a, b| a.compare(b));
    TB.pair(TT::atom("state_gset"), TB.list(&es))
}

/// A `state_gcounter` of up to `max` actors drawn by `actor`, `==`
/// duplicates dropped, each with a count drawn by `count`, in term order.
pub fn gcounter_of(
    r: &mut Rng,
    max: u64,
    actor: fn(&mut Rng) -> TT,
    count: fn(&mut Rng) -> i64,
) -> TT {
    let mut es: Vec<(TT, i64)> = Vec::new();
    for _ in 0..r.next(max) {
        let a = actor(r);
        if !es.iter().any(|(x, _)| x.equal(&a)) {
            es.push((a, count(r)));
        }
    }
    es.sort_by(|a, b| a.0.compare(&b.0));
    let items: Vec<TT> = es
        .iter()
        .map(|(a, n)| TB.pair(a.clone(), TB.int(*n)))
        .collect();
    TB.pair(TT::atom("state_gcounter"), TB.list(&items))
}
