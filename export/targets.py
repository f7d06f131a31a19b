"""The devices lowbit synthesizes for, and what ``auto`` folding may use of each."""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.errors import LowbitError

__all__ = ["Target", "TARGETS", "target"]


@dataclass(frozen=True)
class Target:
    name: str
    family: str  # "ice40", "ecp5" or "asic"
    device: str  # nextpnr device flag
    package: str
    luts: int
    ffs: int
    bram_blocks: int
    spram_blocks: int = 0
    dsps: int = 0

    @property
    def hw_family(self) -> str:
        """The FPGA family the hardware is built for (popcount style, operand registers); an
        ASIC is mapped from the iCE40 structure."""
        return "ecp5" if self.family == "ecp5" else "ice40"

    def budgets(self, lut_budget: int | None = None, fps: float | None = None,
                reserve_bram: int = 0) -> dict:
        """What ``auto`` folding may use: on iCE40 the binding limit is logic cells (LUTs +
        flip-flops, 70 % of the device: the estimate's error and routing need room), on ECP5
        LUTs (80 %); block RAMs less ``reserve_bram``, on ECP5 95 % of them (room for the
        router, as with the LUTs: CNV_1W1A at 208 of 208 DP16KD did not route, nextpnr still had
        222,847 of 248,855 arcs left after 30 min, though that design also registered its LUT
        ROM's 4,608 weight bits, which at 196 blocks routed as slowly; at 207 and 193 without
        that register it routed in under an hour). A given ``lut_budget`` takes the place of
        the logic limit; with ``fps`` the limit still caps the search."""
        if not self.luts:
            return {"lut_budget": lut_budget}
        blocks = int(self.bram_blocks * 0.95) if self.family == "ecp5" else self.bram_blocks
        budgets = {"lut_budget": lut_budget, "bram_budget": blocks - reserve_bram}
        if lut_budget is None:
            if self.family == "ice40":
                budgets["cell_budget"] = int(self.luts * 0.7)
            else:
                budgets["lut_budget"] = int(self.luts * 0.8)
        return budgets


TARGETS = {t.name: t for t in (
    Target("ice40-up5k", "ice40", "up5k", "sg48", 5280, 5280, 30, 4, 8),
    Target("ice40-hx8k", "ice40", "hx8k", "ct256", 7680, 7680, 32),
    Target("ecp5-25k", "ecp5", "25k", "CABGA381", 24288, 24288, 56, 0, 28),
    Target("ecp5-45k", "ecp5", "45k", "CABGA381", 43848, 43848, 108, 0, 72),
    Target("ecp5-85k", "ecp5", "85k", "CABGA381", 83640, 83640, 208, 0, 156),
    Target("asic", "asic", "", "", 0, 0, 0),
)}


def target(name: str) -> Target:
    """The target called ``name``; refuses an unknown one, listing the known."""
    if name not in TARGETS:
        raise LowbitError(f"{name}: unknown; choose one of {', '.join(TARGETS)}", param="target")
    return TARGETS[name]
