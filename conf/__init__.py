"""studio's Hydra configs. This folder is installed as the package `studio.conf`, so `studio-train` finds
its configs in a regular (non-editable) install too; the YAML files here are the only copy."""
