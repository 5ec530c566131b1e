"""The ground floor: values, limits, names, settings readers, the SSRF guard, the AWS clients and price tables every room stands on."""
