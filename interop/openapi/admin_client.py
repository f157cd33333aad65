"""The admin API from the outside: its OpenAPI document validates, a Python
client generated from it (openapi-python-client) creates, pages and
disables clients. Run by tests/it/admin.rs with the server's base URL and
an admin token: python3 admin_client.py BASE TOKEN WORKDIR
"""

import importlib
import json
import subprocess
import sys
import urllib.request

from openapi_spec_validator import validate

base, token, workdir = sys.argv[1:4]
with urllib.request.urlopen(f"{base}/admin/v1/openapi.json") as r:
    doc = json.load(r)
validate(doc)
with open(f"{workdir}/openapi.json", "w") as f:
    json.dump(doc, f)
subprocess.run(
    [sys.executable, "-m", "openapi_python_client", "generate", "--path", f"{workdir}/openapi.json",
     "--output-path", f"{workdir}/writ_admin", "--meta", "none"],
    check=True, capture_output=True,
)
sys.path.insert(0, workdir)
writ = importlib.import_module("writ_admin")
from writ_admin.api.clients import create_client, get_client, list_clients, update_client  # noqa: E402
from writ_admin.models import ClientPatch, NewClientBody  # noqa: E402

client = writ.AuthenticatedClient(base_url=f"{base}/admin/v1", token=token)

created = []
for i in range(5):
    made = create_client.sync(client=client, body=NewClientBody(name=f"generated {i}", scope="read"))
    assert made.client_secret.startswith("writ_sk_"), made
    print("SECRET", made.client_secret)
    created.append(made.client_id)

# Page through with the cursor, two at a time: every client exactly once.
seen, after = [], None
for _ in range(20):
    kwargs = {"limit": 2, "name_prefix": "generated"}
    if after:
        kwargs["after"] = after
    page = list_clients.sync_detailed(client=client, **kwargs)
    items = json.loads(page.content)["items"]
    seen += [c["client_id"] for c in items]
    if "link" not in page.headers:
        break
    after = items[-1]["client_id"]
assert seen == created, (seen, created)

details = update_client.sync(client=client, id=created[0], body=ClientPatch(enabled=False))
assert details.enabled is False, details
assert get_client.sync(client=client, id=created[0]).enabled is False
print("OK", len(seen))
