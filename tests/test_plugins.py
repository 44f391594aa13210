"""The plugin system: built-ins and third-party plugins through the same hooks."""

import types

import pytest

from xite import plugins
from xite.errors import ConfigError, UnknownComponentError
from xite.hookspecs import hookimpl


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
        ("adopter", "top1"), ("adopter", "vote"),
    ]:
        assert expected in names
    packages = {name: pkg for kind, name, pkg in plugins.describe()}
    assert packages["lda"] == "xite"


def test_entry_point_plugin_is_loaded_with_its_package(fresh_registry):
    rows = {(kind, name): pkg for kind, name, pkg in plugins.describe()}
    assert rows.get(("encoder", "hashing")) == "xite-hashing", "plugins/xite-hashing is installed by make"


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
    assert "does not take option(s) alpha" in str(err.value) and "lam" in str(err.value)


def test_bad_option_value_is_a_config_error(fresh_registry):
    with pytest.raises(ConfigError):
        plugins.create("interpolators", "linear", {"lam": 1.5})


def test_a_registered_module_adds_components_and_commands(fresh_registry):
    class Reverse:
        name = "reverse"

        def __init__(self, lam: float = 0.5):
            self.lam = lam

    module = types.ModuleType("xite_testplugin")
    module.register_interpolators = hookimpl(lambda register: register("reverse", Reverse))
    pm = plugins.get_plugin_manager()
    pm.register(module, name="xite_testplugin")
    obj = plugins.create("interpolators", "reverse", {"lam": 0.2})
    assert isinstance(obj, Reverse) and obj.lam == 0.2
    assert ("interpolator", "reverse", "xite_testplugin") in plugins.describe()
