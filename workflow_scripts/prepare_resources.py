"""Rule prepare_resources: build one offline resource directory (with its MANIFEST.json) from packages."""
from pathlib import Path

from advlm import resources, runtime


def main(smk):
    runtime.setup(smk.threads, None, smk.log[0])
    resources.build(smk.wildcards.resource, Path(smk.output.resource), smk.params.downloads_dir)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
