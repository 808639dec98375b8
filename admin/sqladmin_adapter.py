"""The admin's only uses of SQLAdmin's private names, each with the reason no public hook serves.

Everything else in `admin/` goes through SQLAdmin's public API: the `get_*_columns` methods, the
query hooks (`list_query`, `details_query`, `count_query`, `count`, `sort_query`), the AJAX
loader class of `sqladmin.ajax`, `scaffold_form`, `insert_model`,
`update_model`, `delete_model`, the permission checks and the templates. SQLAdmin 0.32 is the
newest release; `tests/admin/test_sqladmin_adapter.py` fails loudly when an upgrade renames
these names or stops calling them.
"""

from __future__ import annotations

from sqladmin import Admin, BaseView, ModelView

# Private module: the menu's classes, needed to build a category that can hide (see below).
from sqladmin._menu import CategoryMenu, ViewMenu
from sqladmin.ajax import QueryAjaxModelLoader
from starlette.requests import Request

from backend.core.statements import AnySelect


class IdentifierLookup(ModelView):
    """Every SELECT SQLAdmin builds from a row identifier goes through `statement_for_identifier`.

    Why a private name: `_stmt_by_identifier` is the one place where SQLAdmin turns an identifier
    from a URL into a SELECT, for the details page, the edit form, its own re-selects before an
    edit or a delete, and file downloads. The public hooks (`form_details_query`,
    `form_edit_query`, `get_object_for_delete`) cover some of these callers only; overriding the
    one builder keeps a row out of the admin's scope unreachable from all of them, including any
    caller a later release adds.
    """

    def _stmt_by_identifier(self, identifier: str) -> AnySelect:
        return self.statement_for_identifier(identifier)

    def statement_for_identifier(self, identifier: str) -> AnySelect:
        """SQLAdmin's SELECT of the row `identifier` names (bare primary key); override to
        narrow it."""
        return super()._stmt_by_identifier(identifier)


class AjaxLookups(ModelView):
    """A view whose form fields may load by search through loaders of its own.

    Why a private name: SQLAdmin's look-up endpoint (`/admin/<identity>/ajax/lookup`) finds the
    loader in `_form_ajax_refs`, which it fills only from `form_ajax_refs`, and only for
    relationships. The admin's pickers set foreign-key columns with queries of their own
    (`admin.pickers`), so their loaders are added to the same mapping after SQLAdmin built it.
    """

    def add_ajax_lookup(self, name: str, loader: QueryAjaxModelLoader) -> None:
        self._form_ajax_refs[name] = loader


class _Category(CategoryMenu):
    """A menu category shown only when one of its views is open to the signed-in admin."""

    def is_visible(self, request: Request) -> bool:
        return any(
            child.is_visible(request) and child.is_accessible(request) for child in self.children
        )


class CategoryHidingAdmin(Admin):
    """An `Admin` whose menu categories hide when none of their views is open to the admin.

    Why private names: SQLAdmin builds the menu in `_build_menu`, into `_menu`, from its own
    `CategoryMenu`, which is always visible; no public hook shapes the menu. Without this, a
    tenant admin would see the platform-only Identity category, with nothing in it.
    """

    def _build_menu(self, view: ModelView | BaseView) -> None:
        if not view.category:
            super()._build_menu(view)
            return
        category = _Category(name=view.category, icon=view.category_icon)
        category.add_child(ViewMenu(view=view, name=view.name, icon=view.icon))
        self._menu.add(category)
