"""Reading a study file's ``design:``: which runs of the grid to train, checked before any
run is built (building the design, :mod:`ablate.designs.build`, refuses what only pydoe can
tell: a resolution no fraction of these factors reaches, say)."""

from __future__ import annotations

from typing import Any

from ablate.designs import fractional
from ablate.designs.relation import letters
from ablate.designs.screening import plackett_burman_sizes
from ablate.parameters import is_int
from ablate.study.reading import Reader, hashable, is_level, parameter
from ablate.study.run_settings import DesignSettings
from ablate.study.settings import Factor

_ROMAN = {"III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8}
#: The keys of ``design:`` that apply to each type (``type`` and ``table`` to every one).
_DESIGN_KEYS = {
    "full": (),
    "fractional": ("resolution", "runs", "generators", "fold"),
    "plackett-burman": ("runs", "fold"),
    "optimal": ("runs", "model", "augment"),
    "definitive-screening": (),
}


class DesignReader(Reader):
    """The ``design:`` section."""

    def design(self, data: Any, factors: tuple[Factor, ...]) -> DesignSettings:
        """Which runs of the grid to train; the checks that need no construction."""
        path = ("design",)
        if isinstance(data, str):  # design: fractional is not enough; design: full is
            data = {"type": data}
        d = self.declared_section(DesignSettings, data, path)
        kind = self.value(d, path, parameter(DesignSettings, "type"))
        for key in d:
            if key not in ("type", "table", *_DESIGN_KEYS[kind]):
                keys = ", ".join(("type", *_DESIGN_KEYS[kind], "table"))
                self.fail((*path, key), f"does not apply to a {kind} design (its keys: {keys})")
        if kind in ("fractional", "plackett-burman"):
            wide = [f"{f.name} ({len(f.levels)} levels)" for f in factors if len(f.levels) != 2]
            if wide:
                self.fail(
                    ("factors",) if "type" not in d else (*path, "type"),
                    f"a {kind} design needs every factor at two levels, and "
                    f"{', '.join(wide)} has more; use type: optimal for factors of any number "
                    "of levels",
                )
        settings = self._base(kind, d, path, factors)
        fold = self._fold(d, path, factors) if "fold" in d else ()
        table = self._table(d.get("table"), (*path, "table"), factors)
        return DesignSettings(
            type=settings.type, resolution=settings.resolution, runs=settings.runs,
            generators=settings.generators, model=settings.model, fold=fold,
            augment=settings.augment, table=table,
        )  # fmt: skip

    def _base(
        self, kind: str, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> DesignSettings:
        """The base design's settings, by type."""
        n_cells = 1
        for f in factors:
            n_cells *= len(f.levels)
        if kind == "fractional":
            return self._fractional(d, path, factors)
        if kind == "plackett-burman":
            sizes = plackett_burman_sizes(len(factors))
            runs = self.integer(d, path, "runs", 4, 1 << 16)
            if runs is not None and runs not in sizes:
                self.expect(
                    (*path, "runs"),
                    f"a run count pydoe builds for {len(factors)} factors "
                    f"({', '.join(map(str, sizes))}, …)",
                    runs,
                )
            return DesignSettings(type=kind, runs=runs)
        if kind == "optimal":
            return self._optimal(d, path, factors, n_cells)
        if kind == "definitive-screening":
            numeric = [f for f in factors if f.kind == "number" and len(f.levels) == 3]
            odd = [f.name for f in factors if f not in numeric and len(f.levels) != 2]
            if odd or not numeric:
                self.fail(
                    (*path, "type"),
                    "a definitive screening design takes numeric factors with three levels "
                    "(and two-level factors beside them); "
                    + (f"{', '.join(odd)} do(es) not fit" if odd else "no factor has three "
                       "numeric levels"),
                )  # fmt: skip
        return DesignSettings(type=kind)

    def _fractional(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> DesignSettings:
        k = len(factors)
        given = [key for key in ("resolution", "runs", "generators") if key in d]
        if len(given) != 1:
            self.fail(
                path,
                "a fractional design is chosen by exactly one of resolution (III, IV, V: the "
                "fewest runs that reach it), runs (a power of two) or generators (e.g. "
                f"'E = ABC'); found {' and '.join(given) or 'none of them'}",
            )
        if not 3 <= k <= fractional.MAX_FACTORS:
            self.fail(
                ("factors",),
                f"a fractional design takes 3 to {fractional.MAX_FACTORS} two-level factors, "
                f"not {k}",
            )
        if "resolution" in d:
            value = d["resolution"]
            if isinstance(value, str) and value.strip().upper() in _ROMAN:
                value = _ROMAN[value.strip().upper()]
            if not is_int(value) or not 3 <= value <= 8:
                self.expect((*path, "resolution"), "III, IV, V (or 3 to 8)", d["resolution"])
            return DesignSettings(type="fractional", resolution=int(value))
        if "runs" in d:
            runs = self.integer(d, path, "runs", 4, 1 << 20)
            smallest, largest = 1 << (k - fractional.largest_p(k)), 1 << (k - 1)
            if runs is None or runs & (runs - 1) or not smallest <= runs <= largest:
                self.expect(
                    (*path, "runs"),
                    f"a power of two from {smallest} to {largest} (a fraction of {k} factors)",
                    d["runs"],
                )
            return DesignSettings(type="fractional", runs=runs)
        raw = d["generators"]
        items = raw if isinstance(raw, list) else [raw]
        if not items or not all(isinstance(g, str) for g in items):
            self.expect((*path, "generators"), "a list of generators like 'E = ABC'", raw)
        texts = [part.strip() for g in items for part in g.split(",") if part.strip()]
        names = [f.name for f in factors]
        try:
            parsed = [fractional.parse_generator(g, names) for g in texts]
            fractional.check_generators(parsed, k)
        except ValueError as err:
            legend = ", ".join(f"{a} = {n}" for a, n in zip(letters(k), names, strict=True))
            self.fail((*path, "generators"), f"{err} (letters: {legend})")
        normal = tuple(g.text(letters(k)) for g in parsed)
        return DesignSettings(type="fractional", generators=normal)

    def _optimal(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...], n_cells: int
    ) -> DesignSettings:
        model = self.value(d, path, parameter(DesignSettings, "model"))
        p = 1 + sum(len(f.levels) - 1 for f in factors)
        if model == "main+2fi":
            p += sum(
                (len(a.levels) - 1) * (len(b.levels) - 1)
                for i, a in enumerate(factors)
                for b in factors[i + 1 :]
            )
        if "runs" not in d:
            self.fail(
                (*path, "runs"),
                f"an optimal design needs runs: how many cells to train, from {p} (the model's "
                f"coefficients) to {n_cells} (the grid)",
            )
        if p > n_cells:
            self.fail((*path, "model"), f"needs {p} coefficients, more than the {n_cells} cells")
        runs = self.integer(d, path, "runs", p, n_cells)
        augment_raw = d.get("augment", [])
        augment = augment_raw if isinstance(augment_raw, list) else [augment_raw]
        if not all(is_int(a) and a >= 1 for a in augment):
            self.expect((*path, "augment"), "a number of runs, or a list of them", augment_raw)
        if runs is not None and runs + sum(augment) > n_cells:
            self.fail(
                (*path, "augment"),
                f"adds {sum(augment)} runs to {runs}, more than the {n_cells} cells of the grid "
                "(for repeats, add replicates)",
            )
        return DesignSettings(type="optimal", runs=runs, model=model, augment=tuple(augment))

    def _fold(
        self, d: dict[str, Any], path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> tuple[str, ...]:
        raw = d["fold"]
        items = raw if isinstance(raw, list) else [raw]
        names = [f.name for f in factors]
        for item in items:
            if item != "all" and item not in names:
                self.expect(
                    (*path, "fold"),
                    "fold-overs, each 'all' (every factor reversed) or a factor's name "
                    f"({', '.join(names)})",
                    item,
                )
        if len(set(items)) != len(items):
            self.fail((*path, "fold"), "lists the same fold-over twice")
        return tuple(items)

    def _table(
        self, data: Any, path: tuple[str, ...], factors: tuple[Factor, ...]
    ) -> tuple[tuple[Any, ...], ...]:
        """The runs a resolved study records: one list of levels per run, in factor order."""
        if data is None:
            return ()
        if not isinstance(data, list) or not all(
            isinstance(r, list) and len(r) == len(factors) for r in data
        ):
            self.expect(path, f"a list of runs, each a list of {len(factors)} levels", data)
        for row in data:
            for f, level in zip(factors, row, strict=True):
                if not is_level(level, f):
                    self.expect(path, f"levels of {f.name}", level)
        return tuple(tuple(hashable(v) for v in row) for row in data)
