"""Rule prepare_resources: build one offline resource directory (with its MANIFEST.json) from packages."""

from pathlib import Path

from advlm import resources, runtime


def main(smk):
    runtime.setup(smk.threads, None, uses_torch=False)
    archive = smk.input.get("archive")  # the pinned source archive, for the resources built from one
    resources.build(smk.wildcards.resource, Path(smk.output.resource), archive and Path(archive).parent)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821  (injected by Snakemake's script directive)
