"""The simulator's App manifest flow: GitHub's "new App" form pages and `POST /app-manifests/{code}/conversions`.

The simulator hosts one App. Creating an App from a manifest replaces it (new id, slug, key pair and
webhook secret) and keeps its installations, as if the new App had been installed where the old one was.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from chantbot_sim.github.git import iso
from chantbot_sim.github.keys import app_key_pair
from chantbot_sim.github.world import WEB, node_id

if TYPE_CHECKING:
    from chantbot_sim.github.server import GitHubSimulator

CODE_TTL = 3600.0  # GitHub: the code must be exchanged within an hour
# Events an App may subscribe to, and the permissions (any one of them) each needs. GitHub sends
# `installation` and `installation_repositories` to every App unasked and refuses them here.
EVENTS: dict[str, tuple[str, ...]] = {
    "branch_protection_rule": ("administration",), "check_run": ("checks",), "check_suite": ("checks",),
    "code_scanning_alert": ("security_events",), "commit_comment": ("contents",), "create": ("contents",),
    "delete": ("contents",), "deployment": ("deployments",), "deployment_status": ("deployments",),
    "discussion": ("discussions",), "discussion_comment": ("discussions",), "fork": ("contents",),
    "gollum": ("contents",), "issue_comment": ("issues", "pull_requests"), "issues": ("issues",),
    "label": ("metadata",), "member": ("members",), "membership": ("members",), "merge_group": ("merge_queues",),
    "meta": ("metadata",), "milestone": ("issues", "pull_requests"), "organization": ("members",),
    "page_build": ("pages",), "public": ("metadata",), "pull_request": ("pull_requests",),
    "pull_request_review": ("pull_requests",), "pull_request_review_comment": ("pull_requests",),
    "pull_request_review_thread": ("pull_requests",), "push": ("contents",), "release": ("contents",),
    "repository": ("metadata",), "repository_dispatch": ("contents",), "star": ("metadata",),
    "status": ("statuses",), "team": ("members",), "team_add": ("members",), "watch": ("metadata",),
    "workflow_dispatch": ("actions",), "workflow_job": ("actions",), "workflow_run": ("actions",),
}
PERMISSIONS = frozenset({
    "actions", "administration", "checks", "contents", "deployments", "discussions", "environments", "issues",
    "members", "merge_queues", "metadata", "organization_administration", "organization_hooks",
    "organization_projects", "packages", "pages", "pull_requests", "repository_hooks", "repository_projects",
    "secret_scanning_alerts", "secrets", "security_events", "single_file", "statuses", "vulnerability_alerts",
    "workflows",
})
LEVELS = frozenset({"read", "write"})
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")


def manifest_errors(manifest: Any) -> list[str]:
    """What GitHub would refuse in a manifest (empty when it would show the form)."""
    if not isinstance(manifest, dict):
        return ["The manifest must be a JSON object"]
    errors = []
    if not isinstance(manifest.get("name"), str) or not manifest["name"].strip():
        errors.append("Name can't be blank")
    if not _http_url(manifest.get("url")):
        errors.append("Homepage URL can't be blank and must be a URL (url)")
    hook = manifest.get("hook_attributes")
    if not isinstance(hook, dict) or not _http_url(hook.get("url")):
        errors.append("Webhook URL can't be blank and must be a URL (hook_attributes.url)")
    if "redirect_url" in manifest and not _http_url(manifest["redirect_url"]):
        errors.append("Redirect URL must be a URL")
    permissions = manifest.get("default_permissions") or {}
    if not isinstance(permissions, dict):
        return errors + ["default_permissions must be an object"]
    for name, level in permissions.items():
        if name not in PERMISSIONS:
            errors.append(f"Default permission unsupported: {name}")
        elif level not in LEVELS:
            errors.append(f"Default permission {name} must be read or write, not {level!r}")
    events = manifest.get("default_events") or []
    if not isinstance(events, list):
        return errors + ["default_events must be a list"]
    for event in events:
        if event not in EVENTS:
            errors.append(f"Default events unsupported: {event}")
        elif not any(permissions.get(p) in LEVELS for p in EVENTS[event]):
            errors.append(f"Default event {event} needs the {' or '.join(EVENTS[event])} permission")
    return errors


def _http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def slug_of(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:34] or "app"


class ManifestFlow:
    """GitHub's web pages for a new App from a manifest, and the code conversion of its REST API."""

    def __init__(self, sim: "GitHubSimulator", *, signed_in: str = "octocat") -> None:
        self.sim = sim
        self.signed_in = signed_in  # the account whose browser is on the form
        self.received: list[dict[str, Any]] = []  # manifests posted to the form, valid or not
        self.created: list[dict[str, Any]] = []  # conversion answers, pem and secrets included
        self._pending: dict[str, dict[str, Any]] = {}  # code -> what the conversion returns, with its expiry

    def add_routes(self, app: web.Application) -> None:
        for prefix in ("", "/organizations/{org}"):
            app.router.add_route("*", prefix + "/settings/apps/new", self._form)
            app.router.add_post(prefix + "/settings/apps", self._create)
        app.router.add_post("/app-manifests/{code}/conversions", self._convert)

    # -- the browser's side
    async def _form(self, request: web.Request) -> web.Response:
        """The manifest posted from the App's page: GitHub's "Create GitHub App" page, or its error page."""
        fields = await request.post() if request.method == "POST" else request.query
        org = request.match_info.get("org")
        raw = fields.get("manifest")
        try:
            manifest = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            manifest = None
        self.received.append({"owner": org or self.signed_in, "manifest": manifest,
                              "state": request.query.get("state")})
        errors = manifest_errors(manifest) if manifest is not None else ["The manifest is missing or not JSON"]
        if org is not None and not _ORG.fullmatch(org):
            errors.append("Organization not found")
        if errors:
            items = "".join(f"<li>{html.escape(e)}</li>" for e in errors)
            return web.Response(status=422, content_type="text/html",
                                text=f"<h1>Invalid GitHub App configuration</h1><ul id='errors'>{items}</ul>")
        state = urlencode({"state": request.query.get("state", "")})
        action = f"/organizations/{org}/settings/apps?{state}" if org else f"/settings/apps?{state}"
        rows = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>"
                       for k, v in sorted((manifest.get("default_permissions") or {}).items()))
        page = (f"<h1>Create GitHub App for {html.escape(org or self.signed_in)}</h1>"
                f"<form method='post' action='{html.escape(action, quote=True)}'>"
                f"<label>GitHub App name <input name='name' value='{html.escape(manifest['name'], quote=True)}'>"
                f"</label><input type='hidden' name='manifest' value='{html.escape(json.dumps(manifest), quote=True)}'>"
                f"<ul id='permissions'>{rows}</ul>"
                f"<p id='events'>{html.escape(', '.join(manifest.get('default_events') or []))}</p>"
                f"<button type='submit' id='create'>Create GitHub App for {html.escape(org or self.signed_in)}"
                f"</button></form>")
        return web.Response(content_type="text/html", text=page)

    async def _create(self, request: web.Request) -> web.Response:
        """The App is created: the browser goes to the manifest's redirect_url with a one-hour code."""
        fields = await request.post()
        try:
            manifest = json.loads(str(fields.get("manifest", "")))
        except ValueError:
            manifest = None
        if manifest_errors(manifest):
            return web.Response(status=422, text="Invalid GitHub App configuration")
        name = str(fields.get("name") or manifest["name"]).strip()[:34]
        owner = request.match_info.get("org") or self.signed_in
        code = secrets.token_hex(20)
        self._pending[code] = {"manifest": {**manifest, "name": name}, "owner": owner,
                               "expires": self.sim.clock() + CODE_TTL,
                               "kind": "Organization" if request.match_info.get("org") else "User"}
        target = manifest.get("redirect_url") or f"{WEB}/apps/{slug_of(name)}"
        query = {"code": code, **({"state": request.query["state"]} if request.query.get("state") else {})}
        raise web.HTTPFound(f"{target}{'&' if '?' in target else '?'}{urlencode(query)}")

    # -- the REST side
    async def _convert(self, request: web.Request) -> web.Response:
        pending = self._pending.pop(request.match_info["code"], None)
        if pending is None or pending["expires"] <= self.sim.clock():
            return web.json_response({"message": "Not Found", "documentation_url":
                                      "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest"},
                                     status=404)
        manifest, owner = pending["manifest"], pending["owner"]
        private, public = app_key_pair()
        app_id, slug, now = self.sim.next_id(), slug_of(manifest["name"]), iso(time.time())
        user = self.sim.user(owner, pending["kind"])
        answer = {
            "id": app_id, "slug": slug, "node_id": node_id("A", app_id),
            "owner": {"login": owner, "id": user["id"], "node_id": node_id("U", user["id"]), "type": pending["kind"],
                      "html_url": f"{WEB}/{owner}", "site_admin": False},
            "name": manifest["name"], "description": manifest.get("description") or "",
            "external_url": manifest["url"], "html_url": f"{WEB}/apps/{slug}", "created_at": now, "updated_at": now,
            "permissions": {"metadata": "read", **(manifest.get("default_permissions") or {})},
            "events": list(manifest.get("default_events") or []), "installations_count": 0,
            "client_id": "Iv1." + secrets.token_hex(8), "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20), "pem": private,
        }
        self.created.append({**answer, "hook_url": manifest["hook_attributes"]["url"]})
        self._adopt(app_id, slug, public)
        return web.json_response(answer, status=201)

    def _adopt(self, app_id: int, slug: str, public_pem: str) -> None:
        """The simulator becomes the new App: its JWTs verify, its bot user writes the comments."""
        sim = self.sim
        sim.app_id, sim.app_slug, sim.public_key = app_id, slug, public_pem.encode()
        sim.bot_login = f"{slug}[bot]"
        sim.user(sim.bot_login, "Bot")
