// meshscope: the side panel's node or edge, shown selected in the graph too (it may have been chosen
// from the "Details of" list or a neighbour button rather than by a tap), and its panel from the top.
window.dash_clientside = Object.assign({}, window.dash_clientside);
window.dash_clientside.meshscope = Object.assign({}, window.dash_clientside.meshscope, {
  showSelection: function (selection) {
    var box = document.getElementById("graph");
    var cy = box && box._cyreg && box._cyreg.cy;
    if (cy) {
      cy.elements(":selected").unselect();
      if (selection && selection.id) cy.getElementById(selection.id).select();
    }
    // Another node or edge: its details from the top (the panel's sections are updated in place).
    var panel = document.getElementById("panel");
    if (panel) panel.scrollTop = 0;
    return window.dash_clientside.no_update;
  },
});
