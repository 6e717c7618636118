"""Server lifecycle and input validation through the public API."""
import concurrent.futures
import uuid


def count_instances(stack):
    return int(stack.scalar("SELECT count(*) FROM instances"))


def test_boot_goes_active_on_a_host(admin, clean):
    sid = admin.boot("e2e-boot")
    s = admin.wait(sid)
    assert s["OS-EXT-SRV-ATTR:host"] in ("host1", "host2")
    assert s["OS-EXT-STS:power_state"] == 1
    assert s["OS-EXT-STS:vm_state"] == "active"


def test_boot_pinned_host_then_stop_start_delete(admin, stack, clean):
    sid = admin.boot("e2e-pinned", az="nova:host2")
    s = admin.wait(sid)
    assert s["OS-EXT-SRV-ATTR:host"] == "host2"
    # The fake driver's guest is a real directory of files on that host.
    host_dir = f"{stack.env['FERRY_STATE_DIR']}/hosts/host2"
    node_dir = f"{host_dir}/instances/{sid}"
    import os
    assert os.path.exists(f"{host_dir}/domains/{sid}.json") and os.path.exists(node_dir + "/disk")
    admin.ok(admin.post(f"/v2.1/servers/{sid}/action", {"os-stop": None}), 202)
    s = admin.wait(sid, ("SHUTOFF",))
    assert s["OS-EXT-STS:power_state"] == 4
    r = admin.post(f"/v2.1/servers/{sid}/action", {"os-stop": None})
    assert r.status_code == 409 and "conflictingRequest" in r.json()
    admin.ok(admin.post(f"/v2.1/servers/{sid}/action", {"os-start": None}), 202)
    admin.wait(sid)
    admin.delete(sid)
    assert not os.path.exists(node_dir)
    assert stack.scalar(f"SELECT count(*) FROM allocations WHERE consumer_uuid='{sid}'") == "0"


def test_boot_with_auto_network_gets_a_port(admin, stack, clean):
    sid = admin.boot("e2e-net", networks="auto")
    s = admin.wait(sid)
    addrs = [a for net in s["addresses"].values() for a in net]
    assert len(addrs) == 1 and addrs[0]["addr"].startswith("10.")
    host = s["OS-EXT-SRV-ATTR:host"]
    rows = stack.sql(f"SELECT b.host, b.status FROM port_bindings b JOIN ports p ON p.id=b.port_id "
                     f"WHERE p.device_id='{sid}'")
    assert rows == [[host, "ACTIVE"]]
    admin.delete(sid)
    assert stack.scalar(f"SELECT count(*) FROM ports WHERE device_id='{sid}'") == "0"


def test_no_capacity_goes_error_with_fault(admin, clean):
    r = admin.post("/v2.1/flavors", {"flavor": {"name": "e2e-huge", "ram": 10 ** 6, "vcpus": 1,
                                                "disk": 1, "id": "e2e-huge"}})
    assert r.status_code in (200, 409)
    sid = admin.boot("e2e-huge", flavor="e2e-huge")
    s = admin.wait(sid, ("ERROR",), fail=())
    assert "No valid host was found" in s["fault"]["message"]
    admin.delete(sid)


def test_concurrent_boots_never_overcommit(admin, stack, clean):
    # Room for exactly 10: each host has 200 GB of disk at ratio 1.0; 40 GB each -> 5 per host.
    r = admin.post("/v2.1/flavors", {"flavor": {"name": "e2e-fifth", "ram": 64, "vcpus": 1,
                                                "disk": 40, "id": "e2e-fifth"}})
    assert r.status_code in (200, 409)
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        ids = list(ex.map(lambda i: admin.boot(f"e2e-race-{i}", flavor="e2e-fifth"), range(20)))
    states = [admin.wait(i, ("ACTIVE", "ERROR"), fail=())["status"] for i in ids]
    assert states.count("ACTIVE") == 10, states
    assert states.count("ERROR") == 10
    over = stack.sql("SELECT host FROM compute_nodes WHERE local_gb_used > local_gb * disk_allocation_ratio "
                     "OR memory_mb_used > memory_mb * ram_allocation_ratio OR vcpus_used > vcpus * cpu_allocation_ratio")
    assert over == []
    per_host = stack.sql("SELECT n.host, count(*) FROM allocations a JOIN compute_nodes n ON n.id=a.node_id "
                         "GROUP BY n.host ORDER BY 1")
    assert per_host == [["host1", "5"], ["host2", "5"]]


def test_unknown_server_is_404(admin):
    r = admin.get(f"/v2.1/servers/{uuid.uuid4()}")
    assert r.status_code == 404
    assert "itemNotFound" in r.json()


def test_malformed_json_is_400_and_writes_nothing(admin, stack):
    before = count_instances(stack)
    r = admin.request("POST", "/v2.1/servers", raw="{\"server\": {", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "badRequest" in r.json()
    assert count_instances(stack) == before


def test_missing_field_is_400_naming_it(admin, stack):
    before = count_instances(stack)
    r = admin.post("/v2.1/servers", {"server": {"flavorRef": "6", "imageRef": "", "networks": "none"}})
    assert r.status_code == 400
    assert "name" in r.json()["badRequest"]["message"]
    assert count_instances(stack) == before


def test_wrong_type_is_400_naming_it(admin, stack):
    before = count_instances(stack)
    r = admin.post("/v2.1/servers", {"server": {"name": 42, "flavorRef": "6", "imageRef": "",
                                                "networks": "none"}})
    assert r.status_code == 400
    assert "name" in r.json()["badRequest"]["message"]
    assert count_instances(stack) == before


def test_unknown_flavor_is_400(admin, stack):
    before = count_instances(stack)
    r = admin.post("/v2.1/servers", {"server": {"name": "x", "flavorRef": "no-such-flavor",
                                                "imageRef": "", "networks": "none"}})
    assert r.status_code == 400
    assert "flavor" in r.json()["badRequest"]["message"].lower()
    assert count_instances(stack) == before


def test_member_sees_only_own_servers(admin, member, clean):
    mine = member.boot("e2e-member")
    member.wait(mine)
    theirs = admin.boot("e2e-admin-own")
    admin.wait(theirs)
    ids = {s["id"] for s in member.ok(member.get("/v2.1/servers"))["servers"]}
    assert mine in ids and theirs not in ids
    assert member.get(f"/v2.1/servers/{theirs}").status_code == 404
    s = member.server(mine)
    assert "OS-EXT-SRV-ATTR:host" not in s
