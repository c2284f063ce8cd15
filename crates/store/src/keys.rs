//! The writer's maps: caches and pacing buckets keyed by ids, read several times per send.
//!
//! They are hashbrown's maps with its default hasher (foldhash, seeded at random per process)
//! rather than the standard library's SipHash, which took ~4 % of the SQLite writer's
//! instructions per send (docs/BENCHMARKS.md, twentieth round). The keys are tenants' own ids
//! (numbers they own, customers' normalized phone numbers), and the maps hold what the writer
//! works with (configuration, the pacing buckets not yet refilled, a round's facts, a bounded
//! set of chain heads, the deliveries of the last sends), so the seeded hash's weaker
//! resistance to chosen collisions is not a way in. A key of several strings is looked up by a borrowed form ([`Pair`], [`Triple`])
//! that hashes as the owned tuple does, so a lookup builds no `String`.

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
/// (dropping the older) when it holds half of `MAX`; a lookup takes its entry from either. What
/// the writer keeps from sends for what follows them (their deliveries, their customers' facts):
/// entries nobody takes go with their generation.
pub(crate) struct Generations<K, V, const MAX: usize> {
    newer: HashMap<K, V>,
    older: HashMap<K, V>,
    /// Tests: a bound other than `MAX`.
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
            self.older = std::mem::take(&mut self.newer);
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

    /// Tests: how many entries are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
