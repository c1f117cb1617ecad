//! Which backups a retention policy removes, for providers without their own
//! (local, and the orchestration's checks). The newest backup is never removed.

use super::Keep;

/// Maps a timestamp to the period it falls in.
type Period = fn(&str) -> String;

/// `items` are (name, UTC time `YYYY-MM-DDTHH:MM:SSZ`), oldest first. Returns the
/// names to remove.
pub fn to_remove(items: &[(String, String)], keep: &Keep) -> Vec<String> {
    if keep.is_empty() {
        return Vec::new();
    }
    // Newest first; backups within the same second keep their list order (oldest
    // first), so reversing before the stable sort puts the later one first.
    let mut sorted: Vec<&(String, String)> = items.iter().rev().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1));
    let mut kept = vec![false; sorted.len()];
    if let Some(k) = kept.first_mut() {
        *k = true;
    }
    kept.iter_mut()
        .take(keep.last as usize)
        .for_each(|k| *k = true);
    // Periods as prefixes of the timestamp: day, month, year; weeks by ISO week.
    let periods: [(u32, Period); 4] = [
        (keep.daily, |t| t.get(..10).unwrap_or(t).to_string()),
        (keep.weekly, iso_week),
        (keep.monthly, |t| t.get(..7).unwrap_or(t).to_string()),
        (keep.yearly, |t| t.get(..4).unwrap_or(t).to_string()),
    ];
    for (count, period) in periods {
        let mut seen: Vec<String> = Vec::new();
        for (i, item) in sorted.iter().enumerate() {
            if seen.len() >= count as usize {
                break;
            }
            let p = period(&item.1);
            if !seen.contains(&p) {
                seen.push(p);
                kept[i] = true;
            }
        }
    }
    sorted
        .iter()
        .zip(kept)
        .filter(|(_, k)| !k)
        .map(|(item, _)| item.0.clone())
        .collect()
}

fn iso_week(t: &str) -> String {
    t.get(..10)
        .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        .map(|d| {
            let w = d.iso_week_date();
            format!("{}-W{:02}", w.year(), w.week())
        })
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(times: &[&str]) -> Vec<(String, String)> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("b{i}"), t.to_string()))
            .collect()
    }

    #[test]
    fn keeps_last_and_one_per_period_and_never_the_newest() {
        let it = items(&[
            "2026-01-01T10:00:00Z",
            "2026-01-01T12:00:00Z",
            "2026-01-02T10:00:00Z",
            "2026-01-03T10:00:00Z",
        ]);
        assert_eq!(
            to_remove(
                &it,
                &Keep {
                    last: 2,
                    ..Keep::default()
                }
            ),
            ["b1", "b0"]
        );
        assert_eq!(
            to_remove(
                &it,
                &Keep {
                    daily: 2,
                    ..Keep::default()
                }
            ),
            ["b1", "b0"]
        );
        assert_eq!(
            to_remove(
                &it,
                &Keep {
                    daily: 3,
                    ..Keep::default()
                }
            ),
            ["b0"]
        );
        assert!(to_remove(&it, &Keep::default()).is_empty());
        assert_eq!(
            to_remove(
                &it,
                &Keep {
                    yearly: 1,
                    ..Keep::default()
                }
            )
            .len(),
            3
        );
    }
}
