"""What the web tests share: the data's constants, what was ingested, the browser wrapper."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

FIELD = 601
RA, DEC = 233.0, 12.0
USERNAME = "webtester"
PASSWORD = "correct horse battery staple 601"
ORBIT = ("2026 WB601", "Webtestia")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass
class WebData:
    """What was ingested, by collection: image ids visible to the public and to the user."""

    public: dict[str, set[int]] = field(default_factory=dict)
    member: dict[str, set[int]] = field(default_factory=dict)
    """Images of the new night the user (program 2) may see and the public may not."""
    hidden: dict[str, set[int]] = field(default_factory=dict)
    """Program 3 images: nobody here may see them."""
    sha256: dict[str, str] = field(default_factory=dict)
    """path -> checksum of every file of field 601, as the archive recorded it."""


def ids_of_field(connection, table: str, key: str, where: str) -> set[int]:
    return {row[0] for row in connection.execute(
        f"SELECT {key} FROM survey.{table} WHERE field = %s AND {where}", (FIELD,))}


@dataclass
class Browser:
    driver: object
    downloads: Path
    base: str

    def get(self, path: str) -> None:
        self.driver.get(self.base + path)  # type: ignore[attr-defined]

    def clear_downloads(self) -> None:
        for entry in self.downloads.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def screenshot(self, name: str) -> list[int]:
        """Full-page screenshots at 1280 px and at a phone's 390 px (back at 1280 after); the
        widths at which the page is wider than the window (it should fit: wide tables scroll
        in their own box)."""
        driver = self.driver
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        overflowing = []
        for width in (1280, 390):
            driver.set_window_size(width, 900)  # type: ignore[attr-defined]
            if not driver.execute_script(  # type: ignore[attr-defined]
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1"):
                overflowing.append(width)
            height = driver.execute_script(  # type: ignore[attr-defined]
                "return Math.min(document.documentElement.scrollHeight, 6000)")
            driver.set_window_size(width, max(600, height))  # type: ignore[attr-defined]
            driver.save_screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))  # type: ignore
        driver.set_window_size(1280, 900)  # type: ignore[attr-defined]
        return overflowing
