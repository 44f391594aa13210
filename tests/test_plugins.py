"""The plugin system: built-ins and third-party plugins through the same hooks, broken plugins
skipped and reported, and the options schema."""

import os
import subprocess
import sys
import textwrap
import types

import pytest

from xite import plugins
from xite.adopters.base import Adopter
from xite.encoders.base import Encoder, uncovered_languages
from xite.errors import ConfigError, UnknownComponentError
from xite.hookspecs import hookimpl
from xite.options import REQUIRED, coerce, describe, parse_option_docs


@pytest.fixture
def fresh_registry():
    plugins.reset()
    yield
    plugins.reset()


def test_builtins_are_registered(fresh_registry):
    names = {(kind, name) for kind, name, _ in plugins.describe()}
    for expected in [
        ("encoder", "e5-small"), ("encoder", "hf:"), ("retriever", "faiss"), ("retriever", "exact"),
        ("projector", "lda"), ("projector", "pca"), ("projector", "none"),
        ("interpolator", "linear"), ("interpolator", "mixup"), ("interpolator", "slerp"),
        ("adopter", "top1"), ("adopter", "vote"), ("adopter", "agree"),
    ]:
        assert expected in names
    packages = {name: pkg for kind, name, pkg in plugins.describe()}
    assert packages["lda"] == "xite"


def test_core_tests_see_no_third_party_plugins(fresh_registry):
    assert os.environ["XITE_LOAD_PLUGINS"] == ""
    assert {r.package for r in plugins.reports()} == {"xite"}


@pytest.mark.plugins("xite-hashing")
def test_a_test_can_ask_for_an_installed_plugin(fresh_registry):
    rows = {(kind, name): pkg for kind, name, pkg in plugins.describe()}
    assert rows.get(("encoder", "hashing")) == "xite-hashing", "plugins/xite-hashing is installed by make"
    reg, _ = plugins.lookup("encoder", "hashing")
    assert reg.version == "0.1.0" and reg.plugin == "hashing"


def test_unknown_name_lists_registered_names(fresh_registry):
    with pytest.raises(UnknownComponentError) as err:
        plugins.create("projectors", "ica")
    msg = str(err.value)
    assert "unknown projector 'ica'" in msg
    assert "lda (xite)" in msg and "pca (xite)" in msg


def test_prefix_names_pass_the_rest_as_spec(fresh_registry):
    reg, implied = plugins.lookup("encoders", "hf:/some/local/dir")
    assert reg.name == "hf:" and implied == {"spec": "/some/local/dir"}


def test_wrong_option_names_the_accepted_ones(fresh_registry):
    with pytest.raises(ConfigError) as err:
        plugins.create("interpolators", "linear", {"alpha": 0.3})
    assert str(err.value) == "interpolator 'linear' has no option 'alpha'; its options: lam"


def test_bad_option_value_is_a_one_line_config_error_naming_the_component(fresh_registry):
    with pytest.raises(ConfigError) as err:
        plugins.create("interpolators", "linear", {"lam": 1.5})
    assert str(err.value).startswith("interpolator 'linear': lam must be a number in [0, 1]")
    with pytest.raises(ConfigError) as err:
        plugins.create("projector", "lda", {"mode": "drop"})
    assert str(err.value) == "projector 'lda': option mode must be one of 'keep', 'remove', got 'drop'"


# -- a component that is not a ConfigError's fault -------------------------------------------


class _BuggyProjector:
    name = "buggy"

    def __init__(self, rank: int = 1):
        {}["missing"]  # a bug: not the user's input

    def fit(self, x, languages, *, source_language="en"):
        raise AssertionError("never reached")


def _register_module(name, **hooks):
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, hookimpl(fn))
    plugins.get_plugin_manager().register(module, name=name)
    return module


def test_a_bug_in_a_component_keeps_its_traceback_and_names_the_package(fresh_registry):
    _register_module("xite_buggy", register_projectors=lambda register: register("buggy", _BuggyProjector))
    with pytest.raises(KeyError) as err:
        plugins.create("projector", "buggy", {"rank": 2})
    notes = "\n".join(getattr(err.value, "__notes__", []))
    assert "bug in projector 'buggy'" in notes and "_BuggyProjector" in notes and "of package xite_buggy" in notes


def test_a_registered_module_adds_components(fresh_registry):
    class Reverse:
        """Options:
            lam: weight of the target row
        """

        name = "reverse"
        interp = "linear"

        def __init__(self, lam: float = 0.5):
            self.lam = lam

        def coefficients(self, n, rng):
            return [1.0 - self.lam] * n

    _register_module("xite_testplugin", register_interpolators=lambda register: register("reverse", Reverse))
    obj = plugins.create("interpolators", "reverse", {"lam": "0.2"})
    assert isinstance(obj, Reverse) and obj.lam == 0.2
    assert ("interpolator", "reverse", "xite_testplugin") in plugins.describe()
    assert [(o.name, o.type, o.default, o.doc) for o in describe("interpolator", "reverse")] == [
        ("lam", "float", 0.5, "weight of the target row")
    ]


# -- broken third-party plugins, installed as real distributions on sys.path ---------------------

BROKEN = {
    "xite_broken_import": """
        import xite_this_module_does_not_exist
    """,
    "xite_broken_hook": """
        import pluggy
        from xite.encoders.base import Encoder
        hookimpl = pluggy.HookimplMarker("xite")

        class HookEncoder(Encoder):
            name = "hook-enc"
            def encode(self, texts, batch_size=64, progress=True): ...

        @hookimpl
        def register_encoders(register):
            register("hook-enc", HookEncoder)
            raise RuntimeError("boom while registering")
    """,
    "xite_dup": """
        import pluggy
        from xite.retrievers.exact import ExactRetriever
        hookimpl = pluggy.HookimplMarker("xite")

        class MyExact(ExactRetriever):
            pass

        @hookimpl
        def register_retrievers(register):
            register("exact", MyExact)
    """,
    "xite_no_method": """
        import pluggy
        from xite.encoders.base import Encoder
        hookimpl = pluggy.HookimplMarker("xite")

        class NoEncode(Encoder):
            name = "no-encode"

        @hookimpl
        def register_encoders(register):
            register("no-encode", NoEncode)
    """,
    "xite_clash_command": """
        import pluggy
        from xite.projectors.none import NoneProjector
        hookimpl = pluggy.HookimplMarker("xite")

        class Identity(NoneProjector):
            name = "identity"

        @hookimpl
        def register_projectors(register):
            register("identity", Identity)

        @hookimpl
        def register_commands(app):
            @app.command()
            def augment():
                "A second augment."
    """,
    "xite_typo_hook": """
        import pluggy
        hookimpl = pluggy.HookimplMarker("xite")

        @hookimpl
        def register_encoder(register):
            pass
    """,
    "xite_good": """
        import pluggy
        from xite.retrievers.exact import ExactRetriever
        from xite.encoders.base import Encoder
        hookimpl = pluggy.HookimplMarker("xite")

        class FasterExact(ExactRetriever):
            "Options:\\n    block_size: queries per matmul"

        @hookimpl
        def register_retrievers(register):
            register("exact", FasterExact, override=True)

        @hookimpl
        def register_commands(app):
            @app.command("good-hello")
            def hello():
                "Say hello."
                print("hello from xite-good")
    """,
}


def _install_fake_distributions(root):
    for module, source in BROKEN.items():
        package = module.replace("_", "-")
        (root / module).mkdir()
        (root / module / "__init__.py").write_text(textwrap.dedent(source))
        info = root / f"{module}-0.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.3\n")
        (info / "entry_points.txt").write_text(f"[xite]\n{module.removeprefix('xite_')} = {module}\n")
    return ",".join(m.replace("_", "-") for m in BROKEN) + ",xite-not-installed"


@pytest.fixture
def broken_plugins(tmp_path, monkeypatch):
    selection = _install_fake_distributions(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XITE_LOAD_PLUGINS", selection)
    for module in BROKEN:
        sys.modules.pop(module, None)
    plugins.reset()
    yield tmp_path, selection
    plugins.reset()
    for module in BROKEN:
        sys.modules.pop(module, None)


def test_each_broken_plugin_is_skipped_and_reported(broken_plugins):
    errors = {r.package: r.error for r in plugins.reports()}
    assert errors["xite"] is None and errors["xite-good"] is None
    assert errors["xite-broken-import"] == (
        "cannot import xite_broken_import: ModuleNotFoundError: No module named 'xite_this_module_does_not_exist'"
    )
    assert errors["xite-broken-hook"] == "register_encoders raised RuntimeError: boom while registering"
    assert errors["xite-dup"] == (
        "retriever 'exact' is already registered by xite; both xite and xite-dup register it "
        "(register(name, cls, override=True) replaces it on purpose)"
    )
    assert errors["xite-no-method"] == (
        "encoder 'no-encode': xite_no_method.NoEncode does not implement encode() (see xite.encoders.base.Encoder)"
    )
    assert errors["xite-typo-hook"].startswith("implements register_encoder, which xite does not have")
    assert "no installed package has a 'xite' entry point" in errors["xite-not-installed"]
    # The built-ins work, and the deliberate override replaced the built-in.
    exact = plugins.lookup("retriever", "exact")[0]
    assert exact.package == "xite-good" and exact.replaces == "xite"
    assert plugins.create("projector", "lda").rank is None


def test_naming_a_component_of_a_failed_plugin_says_why(broken_plugins):
    with pytest.raises(UnknownComponentError) as err:
        plugins.create("encoder", "hook-enc")
    assert str(err.value) == (
        "encoder 'hook-enc' comes from plugin xite-broken-hook, which failed to load: "
        "register_encoders raised RuntimeError: boom while registering"
    )
    with pytest.raises(UnknownComponentError) as err:
        plugins.create("encoder", "use-m3")
    assert str(err.value).startswith("unknown encoder 'use-m3'; registered encoders: e5-small (xite), hf: (xite); "
                                      "plugins that failed to load: ")
    assert "xite-broken-import (cannot import xite_broken_import: ModuleNotFoundError" in str(err.value)


def test_a_command_clash_fails_only_that_plugin(broken_plugins):
    import typer

    app = typer.Typer()

    @app.command()
    def augment():
        """xite's own augment."""

    plugins.registry()
    assert ("projector", "identity") in {(k, n) for k, n, _ in plugins.describe()}
    plugins.install_commands(app)
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert names == ["augment", "good-hello"]
    report = {r.package: r for r in plugins.reports()}
    assert report["xite-clash-command"].error == "register_commands adds augment, which xite already has"
    assert report["xite-good"].commands == ["good-hello"]
    with pytest.raises(UnknownComponentError, match="comes from plugin xite-clash-command"):
        plugins.create("projector", "identity")
    # Installing again (a second main() in one process) does not see its own commands as clashes.
    plugins.install_commands(app)
    assert [c.name or c.callback.__name__ for c in app.registered_commands] == ["augment", "good-hello"]


def test_the_cli_lists_failures_and_keeps_working(broken_plugins):
    root, selection = broken_plugins
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "XITE_LOAD_PLUGINS": selection, "COLUMNS": "250"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "xite.cli", *args], capture_output=True, text=True, env=env)  # noqa: E731
    listing = run("plugins")
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout
    assert "command good-hello: from xite-good 0.3" in out
    assert "plugin xite-broken-hook 0.3 (broken_hook) failed to load: register_encoders raised RuntimeError" in out
    assert "plugin xite-no-method 0.3 (no_method) failed to load: encoder 'no-encode'" in out
    assert "xite-good (overrides xite's)" in out
    helped = run("--help")
    assert helped.returncode == 0 and "good-hello" in helped.stdout and "augment" in helped.stdout
    hello = run("good-hello")
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from xite-good"
    doctor = run("doctor")
    assert doctor.returncode == 0 and "plugin xite-dup 0.3 (dup) failed to load: retriever 'exact' is already registered" in doctor.stdout
    named = run("describe", "encoder", "no-encode")
    assert named.returncode == 2
    assert "encoder 'no-encode' comes from plugin xite-no-method, which failed to load" in named.stderr


def test_xite_load_plugins_selects_by_entry_point_or_package_name(broken_plugins, monkeypatch):
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "good")  # the entry point's name
    plugins.reset()
    assert [r.package for r in plugins.reports()] == ["xite", "xite-good"]
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "xite_good")  # the distribution's, either spelling
    plugins.reset()
    assert [r.package for r in plugins.reports()] == ["xite", "xite-good"]
    monkeypatch.setenv("XITE_LOAD_PLUGINS", "")
    plugins.reset()
    assert [r.package for r in plugins.reports()] == ["xite"]


# -- options ---------------------------------------------------------------------------------


def test_every_builtin_option_is_typed_and_documented(fresh_registry):
    for reg in plugins.components():
        for info in describe(reg.kind, reg.name):
            assert info.type != "any", f"{reg.kind} {reg.name}: option {info.name} has no annotation"
            assert info.doc, f"{reg.kind} {reg.name}: option {info.name} has no one-line doc"
    spec = {o.name: o for o in describe("encoder", "hf:")}["spec"]
    assert spec.default is REQUIRED and spec.type == "str"


def test_coerce_converts_strings_to_the_declared_types(fresh_registry):
    assert coerce("projector", "lda", {"rank": "3", "center": "true", "mode": "remove", "max_rows_per_language": "none"}) == {
        "rank": 3, "center": True, "mode": "remove", "max_rows_per_language": None}
    assert coerce("interpolator", "linear", {"lam": "0.25"}) == {"lam": 0.25}
    assert coerce("interpolator", "linear", {"lam": 1}) == {"lam": 1.0}  # TOML's 1 for a float
    assert coerce("adopter", "vote", {"k": 3, "min_sim": None}) == {"k": 3, "min_sim": None}


@pytest.mark.parametrize("options, message", [
    ({"k": "abc"}, "adopter 'vote': option k must be an int, got 'abc'"),
    ({"k": True}, "adopter 'vote': option k must be an int, got true"),  # bool is not an int here
    ({"k": "2.5"}, "adopter 'vote': option k must be an int, got '2.5'"),
    ({"balance": "maybe"}, "adopter 'vote': option balance must be true or false, got 'maybe'"),
    ({"min_sim": "high"}, "adopter 'vote': option min_sim must be a number or none, got 'high'"),
    ({"votes": 3}, "adopter 'vote' has no option 'votes'; its options: k, min_sim, min_margin, balance"),
])
def test_coerce_rejects_ill_typed_and_unknown_options(fresh_registry, options, message):
    with pytest.raises(ConfigError) as err:
        coerce("adopter", "vote", options)
    assert str(err.value) == message


def test_option_docs_convention():
    doc = """Summary line.

    Options:
        rank: dimensions kept
            (continued on a second line)
        mode (str): keep or remove

    Returns:
        nothing: this section is not options
    """
    assert parse_option_docs(doc) == {"rank": "dimensions kept (continued on a second line)", "mode": "keep or remove"}


def test_describe_command_prints_the_schema(capsys, fresh_registry):
    from xite.cli import main

    assert main(["describe", "projector", "pca"]) == 0
    out = capsys.readouterr().out
    for expected in ("rank", "int", "8", "number of principal components kept", "'keep' | 'remove'"):
        assert expected in out
    assert main(["describe", "colour", "red"]) == 2
    assert "unknown component kind 'colour'" in capsys.readouterr().err


# -- contracts and languages -------------------------------------------------------------------


def test_contract_accepts_annotated_attributes_and_rejects_missing_ones(fresh_registry):
    from xite.contracts import contract_violation

    class Plain:  # no base class: attributes declared by annotation, set in the constructor
        name: str
        version: str
        dim: int

        def encode(self, texts, batch_size=64, progress=True): ...

    class NoDim:
        name = "x"
        version = "1"

        def encode(self, texts, batch_size=64, progress=True): ...

    assert contract_violation("encoders", Plain) is None
    assert contract_violation("encoders", NoDim).endswith("NoDim has no attribute dim (see xite.encoders.base.Encoder)")

    class Undecided(Adopter):  # inherits adopt() but not the vote() it relies on
        name = "undecided"

    assert "Undecided does not implement vote()" in contract_violation("adopters", Undecided)


def test_uncovered_languages():
    class Covers(Encoder):
        languages = frozenset({"en", "ko", "zh"})

    assert uncovered_languages(Covers(), ["ko", "hi", "zh-TW", "ur", "hi", "EN"]) == ["hi", "ur"]
    assert uncovered_languages(Encoder(), ["hi"]) == []  # an encoder that does not say covers everything
