"""Network (Neutron subset) and volume (Cinder subset) APIs, booting with ports and
volumes, attaching a volume to a running server, and what a delete leaves behind."""
import os

import pytest

from ferry import ApiError, bindings, connections, make_port, make_volume


def project_of(client):
    return client.ok(client.get("/identity/v3/auth/tokens", headers={
        "X-Subject-Token": client.token}))["token"]["project"]["id"]


def port(client, pid):
    return client.ok(client.get(f"/network/v2.0/ports/{pid}"))["port"]


def volume(client, vid):
    return client.ok(client.get(f"/volume/v3/{project_of(client)}/volumes/{vid}"))["volume"]


def bdm(vid, boot_index=-1):
    return [{"uuid": vid, "source_type": "volume", "destination_type": "volume",
             "boot_index": boot_index, "delete_on_termination": False}]


def test_catalog_lists_network_and_volume(admin):
    body = admin.ok(admin.get("/identity/v3/auth/tokens", headers={
        "X-Subject-Token": admin.token}))["token"]
    entries = {e["type"]: e for e in body["catalog"]}
    assert entries["network"]["name"] == "neutron"
    assert entries["network"]["endpoints"][0]["url"].endswith("/network")
    assert entries["volumev3"]["name"] == "cinderv3"
    assert entries["volumev3"]["endpoints"][0]["url"].endswith(
        "/volume/v3/" + body["project"]["id"])


def test_port_lifecycle(admin):
    nets = admin.ok(admin.get("/network/v2.0/networks"))["networks"]
    assert nets and nets[0]["status"] == "ACTIVE"
    pid = make_port(admin, "lonely")
    p = port(admin, pid)
    assert p["name"] == "lonely" and p["network_id"] == nets[0]["id"]
    assert p["status"] == "DOWN" and p["device_id"] == "" and p["binding:host_id"] == ""
    assert p["mac_address"].startswith("fa:16:3e:")
    assert len(p["fixed_ips"]) == 1
    listed = admin.ok(admin.get("/network/v2.0/ports"))["ports"]
    assert pid in [x["id"] for x in listed]
    bad = admin.post("/network/v2.0/ports", {"port": {"network_id": "not-a-uuid"}})
    assert bad.status_code == 400
    bad = admin.post("/network/v2.0/ports", {"port": {"network_id": nets[0]["id"], "x": 1}})
    assert bad.status_code == 400
    assert admin.request("DELETE", f"/network/v2.0/ports/{pid}").status_code == 204
    assert admin.get(f"/network/v2.0/ports/{pid}").status_code == 404


def test_boot_with_port_binds_it_on_the_host(stack, admin, clean):
    pid = make_port(admin, "p1")
    sid = admin.boot("with-port", networks=[{"port": pid}])
    s = admin.wait(sid)
    host = s["OS-EXT-SRV-ATTR:host"]
    p = port(admin, pid)
    assert p["device_id"] == sid and p["status"] == "ACTIVE"
    assert p["binding:host_id"] == host
    assert bindings(stack, sid) == [(host, "ACTIVE")]
    assert list(s["addresses"].values())[0][0]["OS-EXT-IPS-MAC:mac_addr"] == p["mac_address"]
    # A port a server uses cannot be deleted.
    assert admin.request("DELETE", f"/network/v2.0/ports/{pid}").status_code == 409
    ports = admin.ok(admin.get(f"/network/v2.0/ports?device_id={sid}"))["ports"]
    assert [x["id"] for x in ports] == [pid]

    admin.delete(sid)
    p = port(admin, pid)   # preserved: it was made through the network API
    assert p["device_id"] == "" and p["binding:host_id"] == "" and p["status"] == "DOWN"
    assert stack.scalar(f"SELECT count(*) FROM port_bindings WHERE port_id = '{pid}'") == "0"


def test_volume_lifecycle(stack, admin):
    project = project_of(admin)
    vid = make_volume(admin, "v1", size=2)
    v = volume(admin, vid)
    assert v["status"] == "available" and v["size"] == 2 and v["name"] == "v1"
    assert v["attachments"] == []
    path = stack.scalar(f"SELECT path FROM volumes WHERE id = '{vid}'")
    st = os.stat(path)
    assert st.st_size == 2 << 30 and st.st_blocks * 512 < 1 << 20   # sparse
    brief = admin.ok(admin.get(f"/volume/v3/{project}/volumes"))["volumes"]
    assert vid in [x["id"] for x in brief]
    detail = admin.ok(admin.get(f"/volume/v3/{project}/volumes/detail"))["volumes"]
    assert [x for x in detail if x["id"] == vid][0]["status"] == "available"
    assert admin.post(f"/volume/v3/{project}/volumes",
                      {"volume": {"size": 0}}).status_code == 400
    assert admin.request("DELETE", f"/volume/v3/{project}/volumes/{vid}").status_code == 202
    assert admin.get(f"/volume/v3/{project}/volumes/{vid}").status_code == 404
    assert not os.path.exists(path)


def test_boot_with_port_and_volume(stack, admin, clean):
    pid = make_port(admin, "p2")
    vid = make_volume(admin, "data")
    sid = admin.boot("with-vol", networks=[{"port": pid}], block_device_mapping_v2=bdm(vid))
    s = admin.wait(sid)
    host = s["OS-EXT-SRV-ATTR:host"]
    assert [x["id"] for x in s["os-extended-volumes:volumes_attached"]] == [vid]
    v = volume(admin, vid)
    assert v["status"] == "in-use"
    assert [(a["server_id"], a["device"]) for a in v["attachments"]] == [(sid, "/dev/vdb")]
    assert connections(stack, sid) == [host]
    atts = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-volume_attachments"))["volumeAttachments"]
    assert [(a["volumeId"], a["serverId"], a["device"]) for a in atts] == [(vid, sid, "/dev/vdb")]
    # An in-use volume can be neither deleted nor used by another server.
    project = project_of(admin)
    assert admin.request("DELETE", f"/volume/v3/{project}/volumes/{vid}").status_code == 400
    r = admin.post("/v2.1/servers", {"server": {"name": "x", "flavorRef": "6", "imageRef": "",
                                                "networks": "none",
                                                "block_device_mapping_v2": bdm(vid)}})
    assert r.status_code == 400, r.text

    admin.delete(sid)
    v = volume(admin, vid)
    assert v["status"] == "available" and v["attachments"] == []
    assert stack.scalar("SELECT count(*) FROM volume_connections c JOIN volume_attachments a"
                        f" ON a.id = c.attachment_id WHERE a.volume_id = '{vid}'") == "0"
    assert port(admin, pid)["device_id"] == ""
    assert stack.scalar(f"SELECT count(*) FROM port_bindings WHERE port_id = '{pid}'") == "0"


def test_boot_from_volume(stack, admin, clean):
    vid = make_volume(admin, "root")
    sid = admin.boot("bfv", block_device_mapping_v2=bdm(vid, boot_index=0))
    s = admin.wait(sid)
    assert [x["id"] for x in s["os-extended-volumes:volumes_attached"]] == [vid]
    assert volume(admin, vid)["attachments"][0]["device"] == "/dev/vda"
    assert connections(stack, sid) == [s["OS-EXT-SRV-ATTR:host"]]
    assert stack.scalar(f"SELECT boot_index FROM volume_attachments WHERE volume_id = '{vid}'") == "0"


def test_attach_to_running_server(stack, admin, clean):
    sid = admin.boot("attach-me")
    host = admin.wait(sid)["OS-EXT-SRV-ATTR:host"]
    vid = make_volume(admin, "hot")
    r = admin.post(f"/v2.1/servers/{sid}/os-volume_attachments",
                   {"volumeAttachment": {"volumeId": vid}})
    att = admin.ok(r)["volumeAttachment"]
    assert att["volumeId"] == vid and att["serverId"] == sid and att["device"] == "/dev/vdb"
    assert volume(admin, vid)["status"] == "in-use"
    assert connections(stack, sid) == [host]
    s = admin.server(sid)
    assert [x["id"] for x in s["os-extended-volumes:volumes_attached"]] == [vid]
    # Attached already: the volume is no longer available.
    again = admin.post(f"/v2.1/servers/{sid}/os-volume_attachments",
                       {"volumeAttachment": {"volumeId": vid}})
    assert again.status_code == 400
    missing = admin.post(f"/v2.1/servers/{sid}/os-volume_attachments",
                         {"volumeAttachment": {"volumeId": "00000000-0000-4000-8000-000000000000"}})
    assert missing.status_code == 404
    admin.delete(sid)
    assert volume(admin, vid)["status"] == "available"
    assert stack.scalar("SELECT count(*) FROM volume_connections") == "0"


def test_other_projects_cannot_see_or_use(admin, member):
    pid = make_port(admin, "admins")
    vid = make_volume(admin, "admins")
    assert member.get(f"/network/v2.0/ports/{pid}").status_code == 404
    assert pid not in [p["id"] for p in member.ok(member.get("/network/v2.0/ports"))["ports"]]
    assert member.get(f"/volume/v3/{project_of(admin)}/volumes/{vid}").status_code == 403
    assert member.get(f"/volume/v3/{project_of(member)}/volumes/{vid}").status_code == 404
    with pytest.raises(ApiError):
        member.boot("steal", block_device_mapping_v2=bdm(vid))
