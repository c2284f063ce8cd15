//! The writer's maps: caches and pacing buckets keyed by ids, read several times per send.
//!
//! They are hashbrown's maps with its default hasher (foldhash, seeded at random per process)
//! rather than the standard library's SipHash, which took ~4 % of the SQLite writer's
//! instructions per send (docs/BENCHMARKS.md, twentieth round). The keys are tenants' own ids
//! (numbers they own, customers' normalized phone numbers), and the maps hold what the writer
//! works with (configuration, the pacing buckets not yet refilled, a round's facts, a bounded
//! set of chain heads, the deliveries of the last sends), so the seeded hash's weaker
//! resistance to chosen collisions is not a way in. A key of several strings is looked up by a
//! borrowed form ([`Pair`], [`Triple`]) that hashes as the owned tuple does, so a lookup builds
//! no `String`; the per-customer maps, the largest, are keyed by [`PairKey`] instead, which
//! holds ids that are numbers as integers.

pub(crate) use hashbrown::{Equivalent, HashMap};
use std::hash::Hash;

/// A `(String, String)` key, borrowed.
#[derive(Hash)]
pub(crate) struct Pair<'a>(pub &'a str, pub &'a str);

impl Equivalent<(String, String)> for Pair<'_> {
    fn equivalent(&self, k: &(String, String)) -> bool {
        self.0 == k.0 && self.1 == k.1
    }
}

/// A (number, customer) key of the writer's per-pair maps (pacing buckets, kept facts, chain
/// heads, where the customer `""` stands for the number itself): the ids as numbers when they
/// are plain decimal numbers, as a phone-number id and a `wa_id` are, else as text. As numbers
/// it is 24 bytes with nothing on the heap: building it from borrowed ids allocates nothing,
/// and a lookup among tens of thousands of pairs hashes and compares integers instead of
/// following two pointers per candidate (a cache miss each at the full rate;
/// docs/BENCHMARKS.md, twenty-third round). Ordered (for the chains' sorted sweep) as the
/// table of heads orders the ids' text: by number, the number's own key first, then by
/// customer; keys held as text after all others.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PairKey {
    Numbers(u64, u64),
    /// A number's own key: customer `""`.
    Number(u64),
    Text(Box<(String, String)>),
}

impl PairKey {
    pub(crate) fn of(phone_id: &str, wa_id: &str) -> PairKey {
        match (number(phone_id), wa_id.is_empty(), number(wa_id)) {
            (Some(p), true, _) => PairKey::Number(p),
            (Some(p), false, Some(w)) => PairKey::Numbers(p, w),
            _ => PairKey::Text(Box::new((phone_id.to_string(), wa_id.to_string()))),
        }
    }

    /// The key of this pair's number itself (`PairKey::of(phone_id, "")`), `phone_id` being
    /// the number's id this key was made of: from the parsed number when there is one.
    pub(crate) fn number_key(&self, phone_id: &str) -> PairKey {
        match *self {
            PairKey::Numbers(p, _) | PairKey::Number(p) => PairKey::Number(p),
            PairKey::Text(_) => PairKey::of(phone_id, ""),
        }
    }

    /// A key of numbers: the number, and the customer's if it has one (`(0, None)` for text).
    fn number_parts(&self) -> (u64, Option<u64>) {
        match *self {
            PairKey::Numbers(p, w) => (p, Some(w)),
            PairKey::Number(p) => (p, None),
            PairKey::Text(_) => (0, None),
        }
    }

    /// The ids again, as they were given.
    pub(crate) fn ids(&self) -> (String, String) {
        match self {
            PairKey::Numbers(p, w) => (p.to_string(), w.to_string()),
            PairKey::Number(p) => (p.to_string(), String::new()),
            PairKey::Text(t) => (t.0.clone(), t.1.clone()),
        }
    }
}

impl Ord for PairKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering::{Greater, Less};
        match (self, other) {
            (PairKey::Text(a), PairKey::Text(b)) => a.cmp(b),
            (PairKey::Text(_), _) => Greater,
            (_, PairKey::Text(_)) => Less,
            _ => {
                // (number, customer if any) in text order, each computed only if needed: a
                // sweep of the chains' heads sorts tens of thousands of keys
                let ((ap, aw), (bp, bw)) = (self.number_parts(), other.number_parts());
                let order = |x: u64, y: u64| {
                    if x == y {
                        std::cmp::Ordering::Equal
                    } else {
                        text_order(x).cmp(&text_order(y))
                    }
                };
                order(ap, bp).then_with(|| match (aw, bw) {
                    (Some(x), Some(y)) => order(x, y),
                    _ => aw.is_some().cmp(&bw.is_some()),
                })
            }
        }
    }
}

impl PartialOrd for PairKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One id held as [`PairKey`] holds its two: inline as a number when it is a plain decimal
/// number, as greenlight's and Meta's object ids are, else as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IdKey {
    Number(u64),
    Text(Box<str>),
}

impl IdKey {
    pub(crate) fn of(id: &str) -> IdKey {
        number(id).map_or_else(|| IdKey::Text(id.into()), IdKey::Number)
    }

    /// Whether this is the key of `id` (a number compares without touching other memory).
    pub(crate) fn is(&self, id: &str) -> bool {
        match self {
            IdKey::Number(n) => number(id) == Some(*n),
            IdKey::Text(t) => &**t == id,
        }
    }
}

/// Where a number written out sorts among plain decimal numbers written out: its digits
/// left-aligned in 19 places (so `99` comes after `106`), then its length (a prefix first).
type TextOrder = (u64, u32);

/// [`TextOrder`] of `n`.
fn text_order(n: u64) -> TextOrder {
    const POW10: [u64; 19] = {
        let mut t = [1u64; 19];
        let mut i = 1;
        while i < 19 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    let digits = n.checked_ilog10().map_or(1, |l| l + 1);
    (n * POW10[(19 - digits) as usize], digits)
}

/// `s` as a number, if it is one written the only way `u64::to_string` writes it (no sign, no
/// leading zero, at most 19 digits), so that the number gives `s` back.
fn number(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 19 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    b.iter().try_fold(0u64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
    })
}

/// A `(String, String, Option<String>)` key, borrowed.
#[derive(Hash)]
pub(crate) struct Triple<'a>(pub &'a str, pub &'a str, pub Option<&'a str>);

impl Equivalent<(String, String, Option<String>)> for Triple<'_> {
    fn equivalent(&self, k: &(String, String, Option<String>)) -> bool {
        self.0 == k.0 && self.1 == k.1 && self.2 == k.2.as_deref()
    }
}

/// A borrowed key's owned form, to insert it on a miss.
pub(crate) trait ToKey<K> {
    fn to_key(&self) -> K;
}

impl ToKey<String> for str {
    fn to_key(&self) -> String {
        self.to_string()
    }
}

impl ToKey<(String, String)> for Pair<'_> {
    fn to_key(&self) -> (String, String) {
        (self.0.to_string(), self.1.to_string())
    }
}

impl ToKey<(String, String, Option<String>)> for Triple<'_> {
    fn to_key(&self) -> (String, String, Option<String>) {
        (
            self.0.to_string(),
            self.1.to_string(),
            self.2.map(str::to_string),
        )
    }
}

/// `map[key]`, loaded and kept first if absent: the writer's configuration cache.
pub(crate) fn get_or_load<'m, K, Q, V, E>(
    map: &'m mut HashMap<K, V>,
    key: &Q,
    load: impl FnOnce() -> Result<V, E>,
) -> Result<&'m V, E>
where
    K: Hash + Eq,
    Q: Hash + Equivalent<K> + ToKey<K> + ?Sized,
{
    if !map.contains_key(key) {
        let v = load()?;
        map.insert(key.to_key(), v);
    }
    Ok(&map[key])
}

/// A map bounded by two generations: an insert goes to the newer, which becomes the older
/// (dropping the older's entries) when it holds half of `MAX`; a lookup takes its entry from
/// either. What the writer keeps from sends for what follows them (their deliveries, their
/// customers' facts): entries nobody takes go with their generation. The older's table becomes
/// the newer's, emptied: a fresh one regrew by doubling, rehashing every entry on the way, and
/// faulted in fresh pages (~4 % of the writer's CPU on template sends, docs/BENCHMARKS.md,
/// thirty-first round).
pub(crate) struct Generations<K, V, const MAX: usize> {
    newer: HashMap<K, V>,
    older: HashMap<K, V>,
    /// A bound other than `MAX` (tests; a PostgreSQL shard's writer's share).
    pub max: Option<usize>,
}

impl<K, V, const MAX: usize> Default for Generations<K, V, MAX> {
    fn default() -> Self {
        Generations {
            newer: HashMap::default(),
            older: HashMap::default(),
            max: None,
        }
    }
}

impl<K: Hash + Eq, V, const MAX: usize> Generations<K, V, MAX> {
    pub(crate) fn insert(&mut self, key: K, value: V) {
        let half = (self.max.unwrap_or(MAX) / 2).max(1);
        if self.newer.len() >= half {
            std::mem::swap(&mut self.older, &mut self.newer);
            self.newer.clear();
        }
        self.newer.insert(key, value);
    }

    /// Takes the entry, from whichever generation holds it.
    pub(crate) fn remove<Q: Hash + Equivalent<K> + ?Sized>(&mut self, key: &Q) -> Option<V> {
        self.newer.remove(key).or_else(|| self.older.remove(key))
    }

    pub(crate) fn clear(&mut self) {
        self.newer.clear();
        self.older.clear();
    }

    /// Whether either generation holds `key`.
    pub(crate) fn contains<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> bool {
        self.newer.contains_key(key) || self.older.contains_key(key)
    }

    /// Tests: how many entries are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry outlives one turnover of the generations, not two; after a turnover the newer
    /// generation holds the table the older had, emptied, not one that must grow again.
    #[test]
    fn generations_keep_two_halves_in_reused_tables() {
        let mut g: Generations<u32, u32, 8> = Generations::default();
        for k in 0..8 {
            g.insert(k, k);
        }
        // 0..4 filled the first newer, 4..8 the second; 8 turns them over again
        g.insert(8, 8);
        assert_eq!(g.len(), 5);
        assert!(g.newer.capacity() >= 4, "{}", g.newer.capacity());
        assert_eq!(g.remove(&3), None, "two turnovers ago");
        assert_eq!(g.remove(&4), Some(4));
        assert_eq!(g.remove(&8), Some(8));
        assert_eq!(g.remove(&8), None, "taken");
    }

    /// Keys of numbers sort as their ids' text does (the table of heads' order), whatever the
    /// numbers' lengths, a number's own key (customer "") among them; keys of text sort as
    /// their text, after all keys of numbers.
    #[test]
    fn pair_keys_sort_as_their_ids_text() {
        use proptest::prelude::*;
        let number = prop_oneof![
            (0u64..1_000).prop_map(|n| n.to_string()),
            (1u64..u64::MAX / 10).prop_map(|n| n.to_string()),
            Just("9999999999999999999".to_string()),
        ];
        let customer = prop_oneof![number.clone(), Just(String::new())];
        let text = prop_oneof![
            Just("01".to_string()),
            Just("x1".to_string()),
            Just("a".to_string())
        ];
        proptest!(|(a in (number.clone(), customer.clone()), b in (number, customer), t in (text.clone(), text))| {
            let (ka, kb) = (PairKey::of(&a.0, &a.1), PairKey::of(&b.0, &b.1));
            prop_assert_eq!(ka.cmp(&kb), (&a.0, &a.1).cmp(&(&b.0, &b.1)), "{:?} {:?}", a, b);
            let (ta, tb) = (PairKey::of(&t.0, &a.1), PairKey::of(&t.1, &b.1));
            prop_assert_eq!(ta.cmp(&tb), (&t.0, &a.1).cmp(&(&t.1, &b.1)));
            prop_assert_eq!(ta.cmp(&ka), std::cmp::Ordering::Greater);
        });
    }

    /// A pair of plain numbers is held as numbers, anything else as text, and either gives its
    /// ids back unchanged; keys of different ids differ.
    #[test]
    fn pair_keys_keep_their_ids() {
        let cases = [
            ("106540352242922", "16505551234", true),
            ("0", "9999999999999999999", true),
            ("1", "0", true),
            ("0123", "16505551234", false),
            ("106540352242922", "+16505551234", false),
            ("10000000000000000000", "1", false),
            ("99999999999999999999", "1", false),
            ("", "", false),
            ("10", "0", true),
            ("10", "", true),
            ("p1", "w1", false),
            ("p1", "", false),
            ("106540352242922", "", true),
            ("0", "", true),
            ("", "1", false),
            ("12a", "1", false),
        ];
        let mut seen = std::collections::HashSet::new();
        for (p, w, numbers) in cases {
            let k = PairKey::of(p, w);
            let held = matches!(k, PairKey::Numbers(..) | PairKey::Number(_));
            assert_eq!(held, numbers, "{p:?} {w:?}");
            assert_eq!(k.ids(), (p.to_string(), w.to_string()));
            assert_eq!(k, PairKey::of(p, w));
            // the number's own key, from the pair's, is the one made of its id
            assert_eq!(k.number_key(p), PairKey::of(p, ""), "{p:?} {w:?}");
            assert!(seen.insert(k), "{p:?} {w:?} is a key of its own");
        }
        assert_ne!(PairKey::of("12", "3"), PairKey::of("1", "23"));

        // sorted as the table of heads sorts their text: by number, its own key first, then
        // customers; keys held as text last
        let mut keys: Vec<PairKey> = [
            ("p", "w"),
            ("20", "5"),
            ("9", "1"),
            ("10", "7"),
            ("20", ""),
            ("100", ""),
            ("10", "6"),
            ("10", "0"),
            ("10", "61"),
            ("10", ""),
            ("9999999999999999999", "1"),
            ("a", ""),
        ]
        .iter()
        .map(|(p, w)| PairKey::of(p, w))
        .collect();
        keys.sort();
        let ids: Vec<(String, String)> = keys.iter().map(PairKey::ids).collect();
        let want = [
            ("10", ""),
            ("10", "0"),
            ("10", "6"),
            ("10", "61"),
            ("10", "7"),
            ("100", ""),
            ("20", ""),
            ("20", "5"),
            ("9", "1"),
            ("9999999999999999999", "1"),
            ("a", ""),
            ("p", "w"),
        ];
        assert_eq!(ids, want.map(|(p, w)| (p.to_string(), w.to_string())));
        assert_eq!(std::mem::size_of::<PairKey>(), 24);

        for (id, number) in [
            ("106540352242922", true),
            ("b1", false),
            ("007", false),
            ("", false),
        ] {
            let k = IdKey::of(id);
            assert_eq!(matches!(k, IdKey::Number(_)), number, "{id:?}");
            assert!(k.is(id), "{id:?}");
            for other in ["106540352242923", "b2", "07", "7", "1065403522429220", "x"] {
                assert!(!k.is(other), "{id:?} is not {other:?}");
            }
        }
    }

    /// A borrowed key finds its owned form, and only it: the two hash alike.
    #[test]
    fn borrowed_keys_find_their_owned_keys() {
        let mut pairs: HashMap<(String, String), i32> = HashMap::new();
        pairs.insert(("p1".into(), "w1".into()), 1);
        pairs.insert(("p1".into(), String::new()), 2);
        pairs.insert(("p1w".into(), "1".into()), 3);
        assert_eq!(pairs.get(&Pair("p1", "w1")), Some(&1));
        assert_eq!(pairs.get(&Pair("p1", "")), Some(&2));
        assert_eq!(pairs.get(&Pair("p1w", "1")), Some(&3));
        assert_eq!(pairs.get(&Pair("p1", "w2")), None);
        assert_eq!(pairs.get(&Pair("p", "1w1")), None);

        let mut triples: HashMap<(String, String, Option<String>), i32> = HashMap::new();
        triples.insert(("b".into(), "w".into(), Some("p".into())), 1);
        triples.insert(("b".into(), "w".into(), None), 2);
        assert_eq!(triples.get(&Triple("b", "w", Some("p"))), Some(&1));
        assert_eq!(triples.get(&Triple("b", "w", None)), Some(&2));
        assert_eq!(triples.get(&Triple("b", "w", Some(""))), None);

        let mut loads = 0;
        for _ in 0..2 {
            let v = get_or_load(&mut pairs, &Pair("p2", "w1"), || {
                loads += 1;
                Ok::<_, ()>(7)
            });
            assert_eq!(v, Ok(&7));
        }
        assert_eq!(loads, 1, "loaded once, then kept");
        assert_eq!(pairs.get(&("p2".to_string(), "w1".to_string())), Some(&7));
    }
}
