// Steward's portal script: progressive enhancement only. Every page works without it (forms
// post, pages render on the server). Each feature is a section below that looks for its own
// elements and does nothing on pages without them.
"use strict";

// Audit event: recompute the inclusion proof in the browser, so the reader need not take the
// server's word. RFC 9162 as steward-audit hashes: leaf = SHA-256(0x00 ‖ entry bytes), node =
// SHA-256(0x01 ‖ left ‖ right); the root from the audit path as in §2.1.3.2. The entry is the
// text of #audit-entry (the bytes the leaf hash covers); the hashes are #proof's data-attributes.
(function auditProofCheck() {
  const proof = document.getElementById("proof");
  const out = document.getElementById("proof-browser-check");
  const entryElement = document.getElementById("audit-entry");
  if (!proof || !out || !entryElement) {
    return;
  }
  const say = function (text, result) {
    out.textContent = text;
    out.classList.remove("audit-pending", "audit-ok", "audit-bad");
    out.classList.add(result === "match" ? "audit-ok" : result === "mismatch" ? "audit-bad" : "audit-pending");
    out.dataset.result = result;
  };
  if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) {
    say("Your browser cannot check this proof here: its SHA-256 (crypto.subtle) is only given to pages served over HTTPS or from localhost.", "unavailable");
    return;
  }
  const toHex = function (bytes) {
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  };
  const fromHex = function (text) {
    if (!/^[0-9a-f]{64}$/.test(text)) {
      throw new Error("'" + text + "' is not a hex SHA-256 hash");
    }
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i += 1) {
      bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
    }
    return bytes;
  };
  // SHA-256 of a prefix byte followed by the parts.
  const hashWith = async function (prefix, parts) {
    const length = parts.reduce(function (n, p) { return n + p.length; }, 1);
    const input = new Uint8Array(length);
    input[0] = prefix;
    let at = 1;
    parts.forEach(function (p) { input.set(p, at); at += p.length; });
    return new Uint8Array(await window.crypto.subtle.digest("SHA-256", input));
  };
  const check = async function () {
    const data = proof.dataset;
    const index = BigInt(data.index);
    const size = BigInt(data.size);
    const root = data.root;
    // A root is only worth matching when its checkpoint's signature verified.
    if (data.signed !== "true") {
      say("The checkpoint's signature did not verify, so its root proves nothing: your browser did not compare against it.", "unsigned");
      return;
    }
    const path = (data.path || "").split(" ").filter(function (h) { return h !== ""; }).map(fromHex);
    const leaf = await hashWith(0x00, [new TextEncoder().encode(entryElement.textContent)]);
    if (toHex(leaf) !== data.leafHash) {
      say("Your browser hashed the entry shown to " + toHex(leaf) + ", not the leaf hash " + data.leafHash + ": it does not match the checkpoint.", "mismatch");
      return;
    }
    if (index >= size) {
      say("Your browser cannot place leaf " + index + " in a tree of " + size + ": it does not match the checkpoint.", "mismatch");
      return;
    }
    let fn = index;
    let sn = size - 1n;
    let r = leaf;
    for (const p of path) {
      if (sn === 0n) {
        say("Your browser found more hashes in the audit path than a tree of " + size + " has levels: it does not match the checkpoint.", "mismatch");
        return;
      }
      if ((fn & 1n) === 1n || fn === sn) {
        r = await hashWith(0x01, [p, r]);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await hashWith(0x01, [r, p]);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) {
      say("Your browser found too few hashes in the audit path for a tree of " + size + ": it does not match the checkpoint.", "mismatch");
      return;
    }
    if (toHex(r) === root) {
      say("Your browser recomputed the root: it matches the checkpoint (" + root + ").", "match");
    } else {
      say("Your browser recomputed the root " + toHex(r) + ": it does not match the checkpoint's root " + root + ".", "mismatch");
    }
  };
  check().catch(function (error) {
    say("Your browser could not check this proof: " + error.message, "error");
  });
})();

// Change form: a live preview of what Steward would decide, and each step's or check's fields
// shown only for the kind chosen. The preview is POST /changes/preview (the form's own fields,
// CSRF token included), answered as an HTML fragment and swapped into #change-preview, at most
// one request per pause in typing (400 ms); a late answer never replaces a newer one. Without
// this script, the Preview button re-renders the page and every kind's fields stay visible.
(function changeForm() {
  const form = document.getElementById("change-form");
  const panel = document.getElementById("change-preview");
  if (!form || !panel) {
    return;
  }
  let timer = null;
  let asked = 0;
  const refresh = function () {
    const mine = ++asked;
    panel.setAttribute("aria-busy", "true");
    fetch("/changes/preview", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html" },
      body: new URLSearchParams(new FormData(form)),
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("the preview answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (mine === asked) {
          panel.innerHTML = html;
        }
      })
      .catch(function () {
        if (mine === asked) {
          panel.textContent = "The preview is not available right now; press Preview to try again.";
        }
      })
      .finally(function () {
        if (mine === asked) {
          panel.removeAttribute("aria-busy");
        }
      });
  };
  const later = function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 400);
  };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.addEventListener("submit", function (event) {
    if (event.submitter && event.submitter.value === "preview") {
      event.preventDefault();
      window.clearTimeout(timer);
      refresh();
    }
  });
  // Each row's kind select shows the groups that list its kind (data-kinds="a b").
  const showKind = function (select) {
    const row = select.closest("fieldset");
    if (!row) {
      return;
    }
    row.querySelectorAll(".cf-kind").forEach(function (group) {
      const kinds = (group.dataset.kinds || "").split(" ");
      group.hidden = select.value === "" || kinds.indexOf(select.value) < 0;
    });
  };
  form.querySelectorAll("select[data-kind-select]").forEach(function (select) {
    showKind(select);
    select.addEventListener("change", function () { showKind(select); });
  });
})();
