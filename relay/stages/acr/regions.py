"""The ACR regions: the ones Harbor's ali-acr adapter offers.

One list for two readers: relay's settings validate `acr.region` against it, and the Harbor
emulator lists it at `GET /replication/adapterinfos`. Both read the same vendor fact
(goharbor/harbor src/pkg/reg/adapter/aliacr/adapter.go, getAdapterInfo;
docs/vendors/harbor.md#the-ali-acr-adapter), so it is written once. Pure data: no imports, so
the sandbox can use it without pulling in the stage.
"""

from __future__ import annotations

REGIONS = (
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-wulanchabu",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-guangzhou",
    "cn-chengdu",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-south-1",
    "ap-northeast-1",
    "us-west-1",
    "us-east-1",
    "eu-central-1",
    "eu-west-1",
    "me-east-1",
)
