//! A first run, with no durations recorded anywhere, split three ways (`--partition K/3`) on
//! a fixture whose few heavy tests cost a hundred times the others (`fixtures/partition-mix`
//! under Miri): every test runs in exactly one slice, and each slice's share of the tests'
//! measured time stays within 1.5 × the ideal (a third of the whole). Placed by a hash of
//! their names, two heavy tests shared a slice and the slowest slice took 2.28 × the ideal.

mod common;

use std::collections::BTreeMap;

use common::{fixture, read_json, run, runner};

#[test]
fn a_first_run_without_durations_keeps_every_slice_near_the_ideal() {
    common::provisioned();
    let workspace = fixture("partition-mix");
    let dir = workspace.join("target/runner-tests/balance");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A durations file that does not exist: every slice splits as a first run does.
    let none = dir.join("no-durations.json");
    let mut slice_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut seconds = [0.0_f64; 3];
    for k in 1..=3 {
        let out = dir.join(format!("slice-{k}"));
        let result = run(runner()
            .args(["miri", "--partition", &format!("{k}/3")])
            .arg(&workspace)
            .arg("--durations")
            .arg(&none)
            .arg("--out")
            .arg(&out));
        assert!(result.code == 0 || result.code == 1, "{}", result.stderr);
        assert!(
            !none.exists(),
            "a slice never writes the durations it split by"
        );
        // What each test of this slice took, as the slice measured it.
        let measured = read_json(&out.join("durations.json"));
        for (key, value) in measured["stages"]["miri"].as_object().unwrap() {
            let previous = slice_of.insert(key.clone(), k);
            assert!(
                previous.is_none(),
                "{key} ran in slices {previous:?} and {k}"
            );
            seconds[k - 1] += value.as_f64().unwrap();
        }
    }
    // 39 tests, one of which ends its process in undefined behaviour (it has no duration
    // of its own then; the rest all ran).
    assert!(slice_of.len() >= 38, "{slice_of:#?}");
    let ideal = seconds.iter().sum::<f64>() / 3.0;
    let slowest = seconds.iter().copied().fold(0.0, f64::max);
    assert!(
        slowest <= 1.5 * ideal,
        "slices took {seconds:?} s of tests: the slowest is {:.2} × the ideal",
        slowest / ideal
    );
}
