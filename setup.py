"""What pyproject.toml cannot say: the top-level `migrations/` directory ships inside the
package as `billing._migrations`, so an installed (non-editable) billing can migrate its
database; an editable install maps the same name to the source tree."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["billing", "billing.*"]),
        "billing._migrations",
        "billing._migrations.versions",
    ],
    package_dir={"billing._migrations": "migrations"},
    package_data={"billing": ["py.typed"], "billing._migrations": ["script.py.mako"]},
)
