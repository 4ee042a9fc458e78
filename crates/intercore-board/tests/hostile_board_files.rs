//! Board files that a hostile or careless author wrote, as issue 20 found them: a pool
//! whose buffer table exhausts memory when opened (20.6), and files whose structure makes
//! the TOML parser do unbounded work (20.11, measured in `parser_memory.rs`).

use intercore_board::{Board, MAX_NESTING, MAX_POOL_BUFFERS, MAX_STRUCTURE};

fn sim_with_pool(pool: &str) -> String {
    let sim = include_str!("../../../boards/sim.toml");
    let at = sim.find("[pool]").expect("boards/sim.toml has a [pool]");
    format!("{}[pool]\n{pool}\n", &sim[..at])
}

/// Issue 20.6: `[[64, 1000000000]]` with `align = 64` (64 GB, under the 1 TiB byte cap)
/// passed validation, so `board check` called it valid and opening it built a table of a
/// billion buffers. Now the buffer count is bounded in validation, which both `board
/// check` and `open` run first; the bound counts all classes together.
#[test]
fn pool_buffer_count_is_bounded_before_anything_is_allocated() {
    for pool in [
        "classes = [[64, 1000000000]]\nalign = 64",
        "classes = [[64, 600000], [128, 600000]]\nalign = 64",
    ] {
        let e = Board::from_str(&sim_with_pool(pool))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("pool.classes") && e.contains(&MAX_POOL_BUFFERS.to_string()),
            "{pool}: {e}"
        );
    }
    let ok = format!("classes = [[64, {MAX_POOL_BUFFERS}]]\nalign = 64");
    let b = Board::from_str(&sim_with_pool(&ok)).unwrap();
    assert_eq!(b.pool.classes, vec![(64, MAX_POOL_BUFFERS as usize)]);
}

/// Issue 20.11: headers, array elements, dotted keys and nesting are counted before the
/// parser runs, and a file over a bound is refused with the line where it went over;
/// the structure inside strings and comments does not count, and every shipped board
/// passes.
#[test]
fn parser_structure_is_bounded() {
    let tables = "[[t]]\n".repeat(150_000);
    let e = Board::from_str(&tables).unwrap_err().to_string();
    assert!(e.contains(&MAX_STRUCTURE.to_string()), "{e}");
    assert!(e.contains("line 2049"), "{e}");

    let dotted = format!("{} = 1\n", vec!["a"; 10_000].join("."));
    let e = Board::from_str(&dotted).unwrap_err().to_string();
    assert!(e.contains(&MAX_STRUCTURE.to_string()), "{e}");

    let deep = format!("x = {}{}\n", "[".repeat(100), "]".repeat(100));
    let e = Board::from_str(&deep).unwrap_err().to_string();
    assert!(
        e.contains(&format!("nested more than {MAX_NESTING}")),
        "{e}"
    );

    // Brackets and commas in comments and strings are not structure: the parser sees this
    // file and reports its unknown key.
    let mut quiet = sim_with_pool("classes = [[4096, 4]]");
    quiet.push_str(&format!("# {}\n", "[,".repeat(10_000)));
    quiet.push_str(&format!(
        "note = \"{}\\\"{}\"\n",
        "[{,.=".repeat(1000),
        "]".repeat(1000)
    ));
    quiet.push_str(&format!("note2 = '''\n{}'''\n", "{,.=\"".repeat(10_000)));
    let e = Board::from_str(&quiet).unwrap_err().to_string();
    assert!(e.contains("pool.note") && e.contains("unknown key"), "{e}");

    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            intercore_board::BoardFile::from_file(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}
