"""SQLAdmin's private names the admin relies on (`admin/sqladmin_adapter.py`) still exist, with
the same shape, and SQLAdmin still calls them where the adapter expects: an upgrade that changes
any of this fails here, by name, instead of quietly widening what an admin can reach."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from sqladmin import Admin, ModelView, _queries
from sqladmin import _menu as sqladmin_menu
from sqladmin.application import BaseAdmin

from admin import sqladmin_adapter


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_identifier_builder_keeps_its_name_and_shape() -> None:
    assert _parameters(ModelView._stmt_by_identifier) == ["self", "identifier"]


@pytest.mark.parametrize(
    "caller",
    [
        ModelView.form_details_query,
        ModelView.form_edit_query,
        ModelView.get_object_for_delete,
        _queries.Query._update_async,
    ],
)
def test_sqladmin_builds_row_selects_through_it(caller: object) -> None:
    assert "_stmt_by_identifier(" in inspect.getsource(caller)  # type: ignore[arg-type]


def test_the_menu_is_still_built_by_build_menu_into_menu() -> None:
    assert _parameters(Admin._build_menu) == ["self", "view"]
    assert "self._build_menu(" in inspect.getsource(BaseAdmin.add_model_view)
    assert "self._build_menu(" in inspect.getsource(BaseAdmin.add_base_view)
    assert "self._menu = Menu()" in inspect.getsource(BaseAdmin.__init__)


def test_the_menu_classes_keep_their_shape() -> None:
    assert _parameters(sqladmin_menu.CategoryMenu.__init__) == ["self", "name", "icon"]
    assert _parameters(sqladmin_menu.ViewMenu.__init__) == ["self", "view", "name", "icon"]
    assert _parameters(sqladmin_menu.CategoryMenu.is_visible) == ["self", "request"]
    assert "menu.is_visible(request)" in _macros_template()


def _macros_template() -> str:
    return (Path(sqladmin_menu.__file__).parent / "templates/sqladmin/_macros.html").read_text()


def test_the_ajax_endpoint_still_finds_its_loader_in_form_ajax_refs() -> None:
    lookup = inspect.getsource(Admin.ajax_lookup)
    assert "model_view._form_ajax_refs[name]" in lookup
    assert "loader.format(m) for m in await loader.get_list(request, term)" in lookup
    assert "self._form_ajax_refs = {}" in inspect.getsource(ModelView.__init__)


def test_the_adapter_is_the_only_module_naming_sqladmin_privates() -> None:
    private = ("_stmt_by_identifier", "_build_menu", "._menu", "sqladmin._menu", "_admin_ref")
    private += ("_form_ajax_refs",)
    admin_dir = Path(sqladmin_adapter.__file__).parent
    offenders = {
        path.name
        for path in admin_dir.glob("*.py")
        if path.name != "sqladmin_adapter.py" and any(name in path.read_text() for name in private)
    }
    assert offenders == set()
