"""HTML of the simulated site's follow lists: the JS followed-cams pages and the followers pages.

Followed cams (FORMATS.md §3.5): the server sends the header (``span.followed_counts``
"(online/total)") and the ``#roomlist_root`` shell of the real 2026 DOM; the page's own script
then fetches ``/api/ts/roomlist/room-list/?follow=true&offline=...&limit=...&offset=...`` with
``X-Requested-With: XMLHttpRequest`` and renders one card per room (``[data-testid=room-card]``
holding ``a[data-room]``, with the old site's ``div.details`` inside) into
``ul.list.endless_page_template``, then the ``#roomlist_pagination`` links ``?page=N``. A failed
call shows the real page's "Something went wrong" message instead.

With the ``server_rendered`` switch, the pages are the old site's instead: the rooms rendered on
the server in ``ul.list > li.room_list_room`` cards with ``ul.paging`` (§3.4), no script.

Followers (§3.9, markup UNVERIFIED, a guess): server-rendered, a heading with the total in
``span.followers_count``, ``ul.followers_list > li.follower > a.username[href="/<name>/"]`` with
``data-testid`` hooks, and the site's ``ul.paging``. The parsers must not depend on this guess
alone (see ``formats/followers.py``): the ``followers_markup=table`` switch serves
the markup of an independent fake of the site instead, a ``<table>`` of profile links under
``<h2>Followers (145)</h2>``, paged by ``div.pagination`` links ``?page=N`` with
``<a class='next'>`` and the current page a bare ``<span class='current'>``, and a 404 past the
last page (Django's paginator).
"""

import zlib
from collections.abc import Sequence
from html import escape

from upstream_sim.site.pages import anonymous_header, layout, logged_in_header
from upstream_sim.site.state import Account, FollowersMarkup

_SCRIPT = """<script>
(function () {
  var root = document.getElementById("roomlist_root");
  var container = root.querySelector(".roomlist_container");
  var list = container.querySelector("ul.list");
  var limit = parseInt(root.getAttribute("data-limit"), 10);
  var offline = root.getAttribute("data-offline");
  var page = parseInt(new URLSearchParams(location.search).get("page") || "1", 10);
  if (!(page >= 1)) { page = 1; }
  var url = "/api/ts/roomlist/room-list/?enable_recommendations=false&follow=true&limit=" +
    limit + "&offline=" + offline + "&offset=" + ((page - 1) * limit);
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function card(room) {
    var li = el("li", {"class": "roomCard camBgColor", "data-testid": "room-card"});
    var thumb = el("a", {"href": "/" + room.username + "/", "data-room": room.username});
    thumb.appendChild(el("img", {"src": room.img, "width": "180", "height": "101",
      "alt": room.username + "'s chat room", "data-testid": "room-card-image"}));
    li.appendChild(thumb);
    var details = el("div", {"class": "details"});
    var title = el("div", {"class": "title"});
    title.appendChild(el("a", {"href": "/" + room.username + "/", "data-room": room.username,
      "data-testid": "room-card-username"}, room.username));
    title.appendChild(el("span", {"class": "age gender" + room.gender},
      room.display_age === null ? "" : String(room.display_age)));
    details.appendChild(title);
    var subject = el("ul", {"class": "subject"});
    var line = el("li", {"title": room.room_subject});
    line.innerHTML = room.subject;
    subject.appendChild(line);
    details.appendChild(subject);
    var info = el("ul", {"class": "sub-info"});
    info.appendChild(el("li", {"class": "location", "style": "display: none;"}, room.location));
    info.appendChild(el("li", {"class": "cams"}, offline === "true" ? "offline" :
      room.num_users + " viewers"));
    details.appendChild(info);
    li.appendChild(details);
    return li;
  }
  function pageItem(number, active) {
    var li = el("li", {"class": "page_number_container" + (active ? " active" : "")});
    li.appendChild(el("a", {"data-testid": "page-number-button", "href": "?page=" + number},
      String(number)));
    return li;
  }
  function paging(total) {
    var last = Math.max(1, Math.ceil(total / limit));
    var ul = root.querySelector("#roomlist_pagination ul.paging");
    var prev = el("li", {});
    prev.appendChild(el("a", {"class": "prev", "data-testid": "prev-button",
      "href": "?page=" + Math.max(1, page - 1)}));
    ul.appendChild(prev);
    for (var n = 1; n <= last; n++) {
      if (n === 1 || n === last || Math.abs(n - page) <= 2) {
        ul.appendChild(pageItem(n, n === page));
      }
    }
    var next = el("li", {});
    next.appendChild(el("a", {"class": "next", "data-testid": "next-button",
      "href": "?page=" + (page + 1)}));
    ul.appendChild(next);
  }
  fetch(url, {headers: {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json"},
               credentials: "same-origin"})
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(function (data) {
      data.rooms.forEach(function (room) { list.appendChild(card(room)); });
      paging(data.total_count);
      root.setAttribute("data-state", "loaded");
    })
    .catch(function () {
      container.querySelector(".roomlist-reload-msg").style.display = "block";
      root.setAttribute("data-state", "failed");
    });
})();
</script>"""


def followed_list_page(
    account: Account | None, *, offline: bool, page_size: int, age_gate: bool, broken: bool
) -> str:
    """A followed-cams page (``account`` None: what a visitor with a dead session gets).

    Args:
        account: the logged-in account, or None for the anonymous header.
        offline: the offline list (``/followed-cams/offline/``) rather than the online one.
        page_size: rooms per page (the ``limit`` the script asks for).
        age_gate: add the age-terms overlay.
        broken: cut the page short before its list and script (a failed page).
    """
    header = logged_in_header(account) if account else anonymous_header()
    body = (
        f"<div id='roomlist_root' data-testid='room-list' data-limit='{page_size}' "
        f"data-offline='{'true' if offline else 'false'}'>"
        "<div class='followed_online_offline' data-testid='followed-online-offline'>"
        "<div class='title' data-testid='online-filter-title'><p><a "
        "data-testid='online-filter-link' href='/followed-cams/'>Online Rooms</a></p></div>"
        "<div class='title' data-testid='offline-filter-title'><p><a "
        "data-testid='offline-filter-link' href='/followed-cams/offline/'>Offline Rooms</a>"
        "</p></div></div>"
        "<div class='roomlist_container endless_page_styles' data-testid='room-list-container'>"
        "<p class='roomlist-reload-msg' style='display: none;'>Something went wrong while "
        "loading the rooms. Please <a class='link'>refresh the page</a> to try again.</p>"
        "<ul class='list endless_page_template'></ul>"
        "<div id='roomlist_pagination' data-testid='room-list-pagination-component'>"
        "<ul class='paging' data-paction='PageNumber'></ul></div></div></div>"
    )
    page = layout("Followed Cams - Chaturbate", header, body + _SCRIPT, age_gate=age_gate)
    return page[: page.index("<div id='roomlist_root'")] if broken else page


def _paging(page: int, last: int) -> str:
    if last <= 1:
        return ""
    items = [f"<li><a href='?page={max(1, page - 1)}' class='prev'>prev</a></li>"]
    for number in range(1, last + 1):
        active = " class='active'" if number == page else ""
        items.append(
            f"<li{active}><a class='endless_page_link' href='?page={number}'>{number}</a></li>"
        )
    following = min(last, page + 1)
    items.append(f"<li><a href='?page={following}' class='next endless_page_link'>next</a></li>")
    return "<ul class='paging'>" + "".join(items) + "</ul>"


def legacy_list_page(account: Account, *, offline: bool, page: int, page_size: int) -> str:
    """A followed-cams page as the old site served it: rendered on the server in the
    ``ul.list > li.room_list_room`` markup of FORMATS.md §3.4, with no room-list call."""
    rooms = account.follows.rooms(offline=offline)
    last = max(1, -(-len(rooms) // page_size))
    items = []
    for room in rooms[(page - 1) * page_size : page * page_size]:
        name = escape(room.username)
        age = "" if room.display_age is None else str(room.display_age)
        cams = "offline" if offline else f"{room.num_users} viewers"
        items.append(
            f"<li class='room_list_room'><div title='Unfollow' class='icon_following' "
            f"data-slug='{name}'></div><a href='/{name}/' data-room='{name}'><img src='"
            f"{escape(room.img)}' width='180' height='101' alt=\"{name}'s chat room\"></a>"
            f"<div class='details'><div class='title'><a href='/{name}/' data-room='{name}'> "
            f"{name}</a><span class='age gender{escape(room.gender)}'>{age}</span></div>"
            f"<ul class='subject'><li title='{escape(room.room_subject)}'>"
            f"{escape(room.room_subject.lower())}</li></ul><ul class='sub-info'>"
            f"<li class='location' style='display: none;'>{escape(room.location)}</li>"
            f"<li class='cams'>{cams}</li></ul></div></li>"
        )
    body = f"<ul id='room_list' class='list'>{''.join(items)}</ul>{_paging(page, last)}"
    title = "Followed Cams - Chaturbate"
    return layout(title, logged_in_header(account), body, age_gate=False)


def followers_page(
    account: Account,
    *,
    page: int,
    page_size: int,
    age_gate: bool,
    broken: bool,
    markup: FollowersMarkup = "list",
    count_shown: bool = True,
) -> str:
    """One page of the account's followers (markup guessed, see the module docstring); the
    total is left out unless ``count_shown``."""
    followers = account.follows.followers
    last = max(1, -(-len(followers) // page_size))
    shown = followers[(page - 1) * page_size : page * page_size]
    total = len(followers) if count_shown else None
    if markup == "table":
        body = _followers_table(shown, total=total, page=page, last=last)
        cut = "<table"
    else:
        body = _followers_list(shown, total=total, page=page, last=last)
        cut = "<ul class='followers_list"
    page_html = layout("Followers - Chaturbate", logged_in_header(account), body, age_gate=age_gate)
    return page_html[: page_html.index(cut)] if broken else page_html


def followers_last_page(account: Account, page_size: int) -> int:
    """The number of the last followers page (1 for an empty list)."""
    return max(1, -(-len(account.follows.followers) // page_size))


def not_found_page(account: Account) -> str:
    """The site's 404, in its logged-in layout."""
    body = "<h1>Page not found (404)</h1><p>Invalid page.</p>"
    return layout("Page not found - Chaturbate", logged_in_header(account), body, age_gate=False)


def _followers_list(shown: Sequence[str], *, total: int | None, page: int, last: int) -> str:
    rows = "".join(
        f"<li class='follower' data-testid='follower-row'><a class='username' "
        f"data-testid='follower-username' href='/{escape(name)}/'>{escape(name)}</a></li>"
        for name in shown
    )
    count = (
        ""
        if total is None
        else f"<span class='followers_count' data-testid='followers-count'>({total})</span>"
    )
    return (
        "<div class='followers-page' data-testid='followers-page'><h1>Followers "
        f"{count}</h1><ul class='followers_list user_list' data-testid='followers-list'>{rows}</ul>"
        f"{_paging(page, last)}</div>"
    )


def _followers_table(shown: Sequence[str], *, total: int | None, page: int, last: int) -> str:
    """The other markup: none of the guessed hooks, the count only in the heading's text."""
    rows = "".join(
        f"<tr><td><a href='/{escape(name)}/'>{escape(name)}</a></td><td>{_since(name)}</td></tr>"
        for name in shown
    )
    links = []
    if page > 1:
        links.append(f"<a class='prev' href='?page={page - 1}'>&laquo; Previous</a>")
    for number in range(1, last + 1):
        links.append(
            f"<span class='current'>{number}</span>"
            if number == page
            else f"<a href='?page={number}'>{number}</a>"
        )
    if page < last:
        links.append(f"<a class='next' href='?page={page + 1}'>Next &raquo;</a>")
    pagination = f"<div class='pagination'>{' '.join(links)}</div>" if last > 1 else ""
    return (
        f"<section class='fans'><h2>Followers{'' if total is None else f' ({total})'}</h2>"
        "<table class='table'>"
        "<thead><tr><th>Username</th><th>Following since</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{pagination}</section>"
    )


def _since(name: str) -> str:
    day = zlib.crc32(name.encode()) % 28 + 1
    return f"2026-01-{day:02d}"
