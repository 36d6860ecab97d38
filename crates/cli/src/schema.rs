//! `teams-archiver schema`: the table schemas and SQL views, from the code that writes them.

use anyhow::Context;

use crate::args::SchemaArgs;
use archive::records::Outcome;

pub fn run(args: SchemaArgs) -> anyhow::Result<Outcome> {
    match args.out {
        Some(dir) => {
            for file in transform::schema_files() {
                let path = dir.join(file.path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&path, file.contents)
                    .with_context(|| format!("writing {}", path.display()))?;
                outln!("{}", path.display());
            }
        }
        None => {
            for table in archive::Table::ALL {
                outln!("{}:", table.name());
                for field in table.schema().fields() {
                    outln!("  {}: {}", field.name(), field.data_type());
                }
            }
        }
    }
    Ok(Outcome::Success)
}
