//! Hard links between the folders of one state. Providers restore folder by folder,
//! so a file that was one inode in two folders of a state comes back as two equal
//! files. The backup says which paths were one inode ([`crate::provider::Provider::link_groups`]);
//! once every folder of the state is restored into its scratch directory (root's,
//! 0700: nobody else can change what is inside), [`relink`] makes them one again,
//! before anything is swapped into place. An interruption leaves only scratch
//! directories, which the next run removes like any other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use crate::event::{Event, Reporter};
use crate::safe_fs::{Dir, Result};

/// A restored folder: its path as backed up, and the directory it was restored into.
pub struct Restored {
    pub folder: PathBuf,
    pub tree: Dir,
}

/// Groups of the backup's paths that were one file, reduced to those that span two
/// or more of `folders`; each member as (index in `folders`, path below it).
pub fn across(groups: Vec<Vec<PathBuf>>, folders: &[PathBuf]) -> Vec<Vec<(usize, PathBuf)>> {
    groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .filter_map(|p| {
                    let i = folders.iter().position(|f| p.starts_with(f))?;
                    let rel = p.strip_prefix(&folders[i]).ok()?.to_path_buf();
                    (!rel.as_os_str().is_empty()).then_some((i, rel))
                })
                .collect::<Vec<_>>()
        })
        .filter(|g| g.iter().map(|(i, _)| i).collect::<BTreeSet<_>>().len() > 1)
        .collect()
}

/// Links every member of each group to its first member. A member that is not a
/// regular file, or differs from the first in contents, size, owner, mode or mtime,
/// stays a file of its own (reported). Returns how many names were linked.
pub fn relink(
    groups: &[Vec<(usize, PathBuf)>],
    restored: &[Restored],
    reporter: &dyn Reporter,
) -> usize {
    let mut linked = 0;
    for group in groups {
        let mut members = group.iter().map(|(i, rel)| {
            let r = &restored[*i];
            (r.folder.join(rel), open_file(&r.tree, rel))
        });
        let Some((first_path, first)) = members.next() else {
            continue;
        };
        let (first_dir, first_name, first_st) = match first {
            Ok(Some(f)) => f,
            other => {
                keep_apart(reporter, &first_path, other.err());
                continue;
            }
        };
        for (path, member) in members {
            match member {
                Ok(Some((dir, name, st))) => {
                    if (st.st_dev, st.st_ino) == (first_st.st_dev, first_st.st_ino) {
                        continue;
                    }
                    if !same_file_data(&st, &first_st)
                        || !same_contents(&first_dir, &first_name, &dir, &name).unwrap_or(false)
                    {
                        reporter.report(Event::Warning {
                            message: format!(
                                "{} and {} were one file in the backup but were restored \
                                 differently; kept as two files",
                                first_path.display(),
                                path.display()
                            ),
                        });
                        continue;
                    }
                    // The directory keeps its restored mtime.
                    let linked_over = dir.meta().and_then(|before| {
                        first_dir.link_over(&first_name, &dir, &name)?;
                        dir.set_meta(&before)
                    });
                    match linked_over {
                        Ok(()) => linked += 1,
                        Err(e) => keep_apart(reporter, &path, Some(e)),
                    }
                }
                other => keep_apart(reporter, &path, other.err()),
            }
        }
    }
    linked
}

type Opened = (Dir, std::ffi::OsString, rustix::fs::Stat);

/// The regular file `rel` below `tree`: its directory, name and status.
fn open_file(tree: &Dir, rel: &Path) -> Result<Option<Opened>> {
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Ok(None);
    };
    let Some(dir) = tree.open_below(parent)? else {
        return Ok(None);
    };
    Ok(match dir.stat(name)? {
        Some(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
            Some((dir, name.to_os_string(), st))
        }
        _ => None,
    })
}

fn same_file_data(a: &rustix::fs::Stat, b: &rustix::fs::Stat) -> bool {
    (
        a.st_mode,
        a.st_uid,
        a.st_gid,
        a.st_size,
        a.st_mtime,
        a.st_mtime_nsec,
    ) == (
        b.st_mode,
        b.st_uid,
        b.st_gid,
        b.st_size,
        b.st_mtime,
        b.st_mtime_nsec,
    )
}

/// Byte by byte: links are made only between files that are already equal.
fn same_contents(
    a_dir: &Dir,
    a: &std::ffi::OsStr,
    b_dir: &Dir,
    b: &std::ffi::OsStr,
) -> std::io::Result<bool> {
    use std::io::Read;
    let mut a = a_dir.open_file(a)?;
    let mut b = b_dir.open_file(b)?;
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y)? == 0);
        }
        b.read_exact(&mut y[..n])
            .map_err(|_| std::io::ErrorKind::InvalidData)?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

fn keep_apart(reporter: &dyn Reporter, path: &Path, e: Option<crate::safe_fs::SafeFsError>) {
    let why = match e {
        Some(e) => e.to_string(),
        None => "it was not restored as a regular file".into(),
    };
    reporter.report(Event::Warning {
        message: format!(
            "{} was a hard link to a file in another folder of its state; kept as a file of its \
             own ({why})",
            path.display()
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_equal_files_are_linked() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
        for (dir, equal, differs) in [("a", "same", "aaaa"), ("b", "same", "bbbb")] {
            std::fs::create_dir(tmp.path().join(dir)).unwrap();
            for (name, text) in [("equal", equal), ("differs", differs)] {
                let path = tmp.path().join(dir).join(name);
                std::fs::write(&path, text).unwrap();
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(time)
                    .unwrap();
            }
        }
        let restored: Vec<Restored> = ["a", "b"]
            .map(|d| Restored {
                folder: Path::new("/srv").join(d),
                tree: Dir::open(&tmp.path().join(d)).unwrap().unwrap(),
            })
            .into();
        let warned = std::sync::Mutex::new(Vec::new());
        let warnings = |e: Event| {
            if let Event::Warning { message } = e {
                warned.lock().unwrap().push(message);
            }
        };
        let groups = across(
            vec![
                vec!["/srv/a/equal".into(), "/srv/b/equal".into()],
                vec!["/srv/a/differs".into(), "/srv/b/differs".into()],
                vec!["/srv/a/gone".into(), "/srv/b/equal".into()],
            ],
            &["/srv/a".into(), "/srv/b".into()],
        );
        assert_eq!(relink(&groups, &restored, &warnings), 1);
        let ino = |p: &str| std::fs::metadata(tmp.path().join(p)).unwrap().ino();
        assert_eq!(ino("a/equal"), ino("b/equal"));
        assert_ne!(ino("a/differs"), ino("b/differs"));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("b/differs")).unwrap(),
            "bbbb"
        );
        let warned = warned.into_inner().unwrap();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].contains("restored differently"), "{warned:?}");
        assert!(warned[1].contains("/srv/a/gone"), "{warned:?}");
    }

    #[test]
    fn only_groups_that_span_folders_are_linked_again() {
        let folders = ["/srv/a".into(), "/srv/b".into()];
        let groups = vec![
            vec!["/srv/a/x".into(), "/srv/b/sub/y".into()],
            // Within one folder: the provider keeps those.
            vec!["/srv/a/m".into(), "/srv/a/n".into()],
            vec!["/srv/a/p".into(), "/srv/a/q".into(), "/srv/b/r".into()],
            // Another state's folder.
            vec!["/srv/a/z".into(), "/srv/ab/z".into()],
        ];
        assert_eq!(
            across(groups, &folders),
            vec![
                vec![(0, "x".into()), (1, "sub/y".into())],
                vec![(0, "p".into()), (0, "q".into()), (1, "r".into())],
            ]
        );
    }
}
