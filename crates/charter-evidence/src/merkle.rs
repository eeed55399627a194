//! A Merkle tree over a subject's usage records, in the style of RFC 9162 §2.1: leaves and
//! nodes are SHA-256 with domain separation (`0x00 || leaf`, `0x01 || left || right`), the
//! tree of `n` leaves splits at the largest power of two below `n`, and an inclusion proof
//! is the audit path from a leaf to the root.
//!
//! A leaf is the 32 bytes of a record's hash (the SHA-256 of its canonical body, as the
//! chain stores it in hex), so a proof for a record ties its whole body to the root. An
//! evidence bundle commits `{size, root}` of the tree over a grant's usage records (see
//! [`crate::usage`]); anyone holding the record and its audit path checks it against that
//! root offline with [`verify_inclusion`].

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over already-hashed leaves (`leaf_hash` of each entry).
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_root();
    }
    // Bottom-up, level by level: the same tree as the recursive definition, because a
    // level's odd last node is carried up unchanged.
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node_hash(l, r),
                [only, ..] => *only,
                [] => empty_root(),
            })
            .collect();
    }
    level[0]
}

/// The audit path of leaf `index` in the tree over `leaves` (already hashed), from the leaf
/// upwards. `None` if `index` is out of range.
pub fn inclusion_path(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        path_into(&leaves[..k], index, path);
        path.push(root_of_leaves(&leaves[k..]));
    } else {
        path_into(&leaves[k..], index - k, path);
        path.push(root_of_leaves(&leaves[..k]));
    }
}

/// Checks that `leaf` (already hashed) is leaf `index` of the tree of `size` leaves with
/// root `root`, given its audit path (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Lowercase hex of a hash.
pub fn to_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// A hash from 64 hex digits.
pub fn from_hex(s: &str) -> Option<Hash> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree by its recursive definition, to check the level-by-level one against.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n);
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
            .collect()
    }

    #[test]
    fn roots_match_the_recursive_definition() {
        for n in 0..40 {
            assert_eq!(root_of_leaves(&leaves(n)), mth(&leaves(n)), "n = {n}");
        }
    }

    #[test]
    fn every_leaf_of_every_size_proves_and_nothing_else_does() {
        for n in 1..34 {
            let l = leaves(n);
            let root = root_of_leaves(&l);
            for i in 0..n {
                let path = inclusion_path(&l, i).unwrap();
                assert!(
                    verify_inclusion(&l[i], i as u64, n as u64, &path, &root),
                    "{i}/{n}"
                );
                // Another leaf, another index, another size, a shortened path: refused.
                let other = leaf_hash(b"other");
                assert!(!verify_inclusion(&other, i as u64, n as u64, &path, &root));
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(!verify_inclusion(&l[i], j as u64, n as u64, &path, &root));
                    assert!(!verify_inclusion(
                        &l[i],
                        i as u64,
                        n as u64,
                        &path[1..],
                        &root
                    ));
                }
            }
            assert!(inclusion_path(&l, n).is_none());
        }
    }

    #[test]
    fn the_empty_tree_and_one_leaf() {
        assert_eq!(
            to_hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let one = leaf_hash(b"");
        // RFC 9162: the hash of a one-leaf tree with an empty leaf.
        assert_eq!(
            to_hex(&one),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert!(verify_inclusion(&one, 0, 1, &[], &one));
        assert_eq!(from_hex(&to_hex(&one)), Some(one));
        assert_eq!(from_hex("zz"), None);
    }
}
