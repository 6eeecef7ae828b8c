"""Maps the card's top-level folders under the one import name `skyvault`.

setup.cfg names the folders in ``package_dir``; this walks them so every sub-package
(e.g. ``vo/adql`` -> ``skyvault.vo.adql``) is installed without listing it by hand.
"""

from pathlib import Path

from setuptools import setup
from setuptools.config.setupcfg import read_configuration

HERE = Path(__file__).parent


def mapped_packages() -> list[str]:
    package_dir = read_configuration(HERE / "setup.cfg")["options"]["package_dir"]
    packages = []
    for name, folder in package_dir.items():
        for init in sorted((HERE / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(HERE / folder)
            if any(part.startswith((".", "__")) for part in relative.parts):
                continue
            packages.append(".".join([name, *relative.parts]))
    return packages


setup(packages=mapped_packages())
