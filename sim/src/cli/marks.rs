//! `logsim marks`: the coverage marks of the system under test, with what each means.

use std::io::Write;

pub(super) fn marks_command(json: bool) -> Result<bool, String> {
    let marks = model::coverage::Mark::ALL;
    if json {
        let list: Vec<_> = (marks.iter())
            .map(|m| serde_json::json!({ "mark": m.name(), "about": m.about() }))
            .collect();
        outln!("{}", serde_json::Value::Array(list));
        return Ok(true);
    }
    for m in marks {
        outln!("{:<46} {}", m.name(), m.about());
    }
    Ok(true)
}
