//! `gradlab affected` end to end: the JSON the page's calculator also
//! receives, for a case worked by hand, and bad input refused naming its flag.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

use serde_json::Value;

fn affected(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gradlab")).arg("affected").args(args).output().unwrap()
}

#[test]
fn two_examples_one_a_micro_batch_weigh_as_worked_by_hand() {
    let out = affected(&["--lengths", "3,12", "--micro-batch", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    // N = 15, G = 2: naive gives 1/(2·3) and 1/(2·12) against corrected's 1/15;
    // on one device local is corrected
    assert_eq!(json["batch"], 2);
    assert_eq!(json["naive"], serde_json::json!([2.5, 0.625]));
    assert_eq!(json["local"], serde_json::json!([1.0, 1.0]));
    assert_eq!(json["summary"]["naive"]["share_of_tokens_off_by_more_than_10_percent"], 1.0);
    assert!(json["verdict"].as_str().unwrap().starts_with("Yes"));
}

#[test]
fn two_ranks_from_a_jsonl_file_with_masked_prompts() {
    let path = std::env::temp_dir().join(format!("gradlab-affected-{}.jsonl", std::process::id()));
    // completions of 2, 6, 4 and 8 bytes behind prompts that are masked
    let lines: Vec<String> = ["ab", "abcdef", "abcd", "abcdefgh"]
        .iter()
        .map(|c| serde_json::json!({"prompt": "Q? ", "completion": c}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = affected(&["--lengths-file", path.to_str().unwrap(), "--mask-prompt", "--ranks", "2", "--json"]);
    std::fs::remove_file(&path).ok();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["lengths"], serde_json::json!([2, 6, 4, 8]));
    // N = 20; rank 0 holds 8 tokens, rank 1 12: local gives N/(2·8), N/(2·12)
    assert_eq!(json["local"][0], 1.25);
    assert_eq!(json["local"][3], 20.0 / 24.0);
    assert_eq!(json["naive"][0], 2.5);
}

#[test]
fn bad_input_names_its_flag_and_fails() {
    for (args, flag) in [
        (&["--lengths", "3,x"][..], "--lengths: item 2 is \"x\""),
        (&["--lengths", "3,4,5", "--micro-batch", "2"], "--micro-batch: 2 does not divide"),
        (&["--lengths", "1,2,3,4", "--micro-batch", "2", "--ranks", "3"], "--ranks:"),
        (&["--lengths", ""], "--lengths:"),
        (&["--lengths", "0,0"], "--lengths:"),
        (&["--lengths", "1,2", "--batch", "3"], "--lengths:"),
    ] {
        let out = affected(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
