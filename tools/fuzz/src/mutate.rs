//! Seed mutation, the stable runner's way to new inputs: a seed (or the last input) changed by
//! one to four edits, each a bit flip, a random or "interesting" byte, an insertion or deletion,
//! a copied range, a dictionary token, or a splice from another seed. Without coverage feedback
//! the edits lean on the target's dictionary, so that most inputs stay close enough to valid to
//! reach past the first syntax check.

use rand::Rng;
use rand::rngs::StdRng;

/// The longest input a mutation makes.
pub const MAX_LEN: usize = 64 * 1024;

/// Bytes that often sit on a parser's edge.
const INTERESTING_BYTES: &[u8] = b"\0\x01\x7f\x80\xff\"'\\/<>&%+#?=;:,{}[] \t\n\r";

/// Numbers that often sit on a parser's edge, as text.
const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e309",
    "-0",
    "0.5",
    "NaN",
    "10000",
    "10001",
];

/// Changes `input` in place by one to four edits. `dictionary` holds the target's tokens;
/// `seeds` are spliced from.
pub fn mutate(input: &mut Vec<u8>, dictionary: &[Vec<u8>], seeds: &[Vec<u8>], rng: &mut StdRng) {
    let edits = rng.random_range(1..=4);
    for _ in 0..edits {
        edit(input, dictionary, seeds, rng);
    }
    input.truncate(MAX_LEN);
}

fn position(input: &[u8], rng: &mut StdRng) -> usize {
    rng.random_range(0..=input.len())
}

fn range(input: &[u8], rng: &mut StdRng) -> (usize, usize) {
    let start = position(input, rng);
    let longest = (input.len() - start).min(64);
    (start, start + rng.random_range(0..=longest))
}

fn edit(input: &mut Vec<u8>, dictionary: &[Vec<u8>], seeds: &[Vec<u8>], rng: &mut StdRng) {
    match rng.random_range(0..11) {
        0 if !input.is_empty() => {
            let at = rng.random_range(0..input.len());
            input[at] ^= 1 << rng.random_range(0..8);
        }
        1 if !input.is_empty() => {
            let at = rng.random_range(0..input.len());
            input[at] = rng.random();
        }
        2 if !input.is_empty() => {
            let at = rng.random_range(0..input.len());
            input[at] = INTERESTING_BYTES[rng.random_range(0..INTERESTING_BYTES.len())];
        }
        3 => {
            let at = position(input, rng);
            let n = rng.random_range(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            input.splice(at..at, bytes);
        }
        4 => {
            let (start, end) = range(input, rng);
            input.drain(start..end);
        }
        5 => {
            // A range copied elsewhere (repeats fields, nests structures).
            let (start, end) = range(input, rng);
            let copy = input[start..end].to_vec();
            let at = position(input, rng);
            input.splice(at..at, copy);
        }
        6 | 7 if !dictionary.is_empty() => {
            let token = &dictionary[rng.random_range(0..dictionary.len())];
            let at = position(input, rng);
            input.splice(at..at, token.iter().copied());
        }
        8 if !dictionary.is_empty() => {
            let token = &dictionary[rng.random_range(0..dictionary.len())];
            let (start, end) = range(input, rng);
            input.splice(start..end, token.iter().copied());
        }
        9 => {
            let number = INTERESTING_NUMBERS[rng.random_range(0..INTERESTING_NUMBERS.len())];
            let (start, end) = range(input, rng);
            input.splice(start..end, number.bytes());
        }
        10 if !seeds.is_empty() => {
            let other = &seeds[rng.random_range(0..seeds.len())];
            let (start, end) = range(other, rng);
            let (at, to) = range(input, rng);
            input.splice(at..to, other[start..end].iter().copied());
        }
        _ => {
            if !input.is_empty() {
                let at = rng.random_range(0..input.len());
                input.truncate(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mutations_change_inputs_and_stay_bounded() {
        let mut rng = StdRng::seed_from_u64(7);
        let seed = br#"{"events":[{"key":"a"}]}"#.to_vec();
        let dictionary = vec![b"\"key\"".to_vec(), b"null".to_vec()];
        let mut changed = 0;
        for _ in 0..1_000 {
            let mut input = seed.clone();
            mutate(
                &mut input,
                &dictionary,
                std::slice::from_ref(&seed),
                &mut rng,
            );
            assert!(input.len() <= MAX_LEN);
            changed += usize::from(input != seed);
        }
        // A few edits undo themselves (a token replacing itself); most do not.
        assert!(changed > 900, "{changed} of 1000 changed");
    }
}
